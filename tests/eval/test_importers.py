"""Benchmark importers, presets and `mcr import` on small annotation files in each benchmark's layout.

The files in tests/eval/data/ use the field names of lmms-eval's task
definitions (lmms_eval/tasks/<name>/utils.py) and of the benchmarks' own
releases; their videos are real (copies of the truth suite's first video).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcr.cli import main
from mcr.eval.importers import BenchmarkImportError, ImportOptions, import_benchmark, read_lmms_task, write_suite
from mcr.eval.presets import PRESETS, apply_preset, choice_prompt, get_preset
from mcr.task import TaskSpec, load_tasks

DATA = Path(__file__).parent / "data"
CLIP = Path(__file__).resolve().parents[2] / "examples" / "suites" / "truth" / "media" / "v1.mp4"
NAMES = ["data/vidAAA0001.mp4", "mlvu_clip_1.mp4", "1_plotQA/movie_101.mp4", "lvb0001.mp4", "lvb_key01.mp4",
         "ego-0001.mp4", "ego-0002.mp4", "CHA01.mp4"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for name in NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CLIP, root / name)
    return root


def test_videomme(videos):
    tasks = import_benchmark("videomme", DATA / "videomme.json", videos)
    assert [t.name for t in tasks] == ["videomme-001-1", "videomme-001-2"]
    first = tasks[0]
    assert first.options == ["Two.", "Three.", "Four.", "Five."] and first.answer == "B"  # letters stripped
    assert first.video == (videos / "data" / "vidAAA0001.mp4").resolve()
    assert first.category == "Counting Problem"
    assert first.metadata["duration_group"] == "short" and first.metadata["domain"] == "Knowledge"
    assert first.video_settings == PRESETS["videomme"].video_settings()
    assert first.metadata["preset"] == {"name": "videomme", "max_frames": 1024, "source": "eval_videomme.sh"}


def test_mlvu_lmms_records_and_release_folder(videos):
    dev = import_benchmark("mlvu", DATA / "mlvu_dev.json", videos)
    assert dev[0].question == "What colour is the first scene?"
    assert dev[0].options == ["green", "red", "navy", "white"] and dev[0].answer == "A"
    assert dev[1].answer == "B" and dev[1].category == "count"  # "(B)" → B
    release = import_benchmark("mlvu", DATA / "mlvu_json", videos)  # the json/ folder; videos under <stem>/
    assert len(release) == 1 and release[0].answer == "B" and release[0].category == "plotQA"
    assert release[0].video.parent.name == "1_plotQA"


def test_longvideobench_candidates_and_option_fields(videos):
    tasks = import_benchmark("longvideobench", DATA / "longvideobench_val.json", videos)
    assert tasks[0].options == ["HIGH TOWER", "NORTH FOREST", "OLD RIVER"] and tasks[0].answer == "B"
    assert tasks[1].options == ["navy", "purple", "yellow"] and tasks[1].answer == "C"  # 'N/A' options dropped
    assert [t.category for t in tasks] == ["T2O", "E3E"]
    assert tasks[0].metadata["duration_group"] == 15


def test_lvbench_meta_jsonl_and_flat_records(videos):
    nested = import_benchmark("lvbench", DATA / "lvbench_video_info.meta.jsonl", videos)
    assert [t.name for t in nested] == ["lvbench-7001", "lvbench-7002"]
    assert nested[0].options == ["a dog", "a kite", "horses", "an eagle"] and nested[0].answer == "A"
    assert (nested[0].span.start, nested[0].span.end) == (11.0, 17.0)  # time_reference → span
    assert nested[1].span is None and nested[1].category == "key information retrieval"
    assert nested[1].metadata["question_types"] == ["key information retrieval", "reasoning"]
    flat = import_benchmark("lvbench", DATA / "lvbench_flat.json", videos)
    assert flat[0].options == ["green", "red", "white", "teal"] and (flat[0].span.start, flat[0].span.end) == (0.0, 6.0)
    assert flat[0].metadata["preset"]["max_frames"] == 1024


def test_egoschema_release_with_answers_and_lmms_records(videos):
    opts = ImportOptions(videos=videos)
    tasks = import_benchmark("egoschema", DATA / "egoschema" / "questions.json", videos, options=opts)
    assert [t.name for t in tasks] == ["egoschema-ego-0001"] and tasks[0].answer == "B"
    assert opts.skipped == {"answer not in the annotations": 1}  # ego-0002 has no public answer
    kept = import_benchmark("egoschema", DATA / "egoschema" / "questions.json", videos, keep_unanswered=True)
    assert [t.answer for t in kept] == ["B", None]
    lmms = import_benchmark("egoschema", DATA / "egoschema_lmms.json", videos)
    assert lmms[0].options[1] == "coloured scenes with titles" and lmms[0].answer == "B"
    assert lmms[0].video_settings.max_pixels == 128 * 32 * 32 and lmms[0].video_settings.min_pixels == 64 * 32 * 32


def test_charades_sta_three_layouts(videos):
    txt = import_benchmark("charades_sta", DATA / "charades_sta_test.txt", videos)
    assert [(t.span.start, t.span.end) for t in txt] == [(0.0, 6.0), (11.0, 17.0)]
    assert all(t.scorer == "span" and t.options is None and t.answer is None and t.category == "grounding" for t in txt)
    from mcr.model.media.video import probe

    duration = probe(CLIP).duration  # the text file has no duration: probed from the video
    assert f"Given the video of duration {duration:.1f} seconds" in txt[0].question
    assert '"a green screen with two squares"' in txt[0].question
    lmms = import_benchmark("charades_sta", DATA / "charades_lmms.json", videos)
    assert (lmms[0].span.start, lmms[0].span.end) == (6.0, 11.0)  # "[6.0, 11.0]" string form
    keyed = import_benchmark("charades_sta", DATA / "charades-timelens.json", videos)
    assert [(t.span.start, t.span.end) for t in keyed] == [(11.0, 17.0), (0.0, 6.0)]  # a reversed span is ordered
    assert keyed[0].video_settings.fps == 4 and keyed[0].metadata["preset"]["max_frames"] == 512


def test_written_suite_loads_back_equal(videos, tmp_path):
    tasks = [*import_benchmark("lvbench", DATA / "lvbench_video_info.meta.jsonl", videos),
             *import_benchmark("charades_sta", DATA / "charades_sta_test.txt", videos)]
    out = write_suite(tasks, tmp_path / "suites" / "mixed.yaml")
    loaded = load_tasks(out)
    assert "../" in out.read_text()  # videos are written relative to the suite file
    fields = ("name", "video", "question", "options", "answer", "span", "category", "metadata", "scorer", "video_settings")
    for a, b in zip(tasks, loaded, strict=True):
        assert a.model_dump(include=set(fields)) == b.model_dump(include=set(fields))


def test_lmms_eval_task_yaml_picks_the_importer_and_keeps_its_prompt(videos):
    task = read_lmms_task(DATA / "lmms" / "videomme.yaml")
    assert task.format == "videomme" and task.task == "videomme"
    assert task.dataset_path == "lmms-eval/Video-MME" and task.test_split == "test"  # from include:
    assert task.post_prompt == "\nReply with the letter of the best option."
    assert task.generation_kwargs["max_new_tokens"] == 16
    assert read_lmms_task(DATA / "lmms" / "videomme.yaml", model="some_model").post_prompt == "The best answer is:"
    tasks = import_benchmark(str(DATA / "lmms" / "videomme.yaml"), DATA / "videomme.json", videos)
    assert tasks[0].metadata["lmms_eval"]["task"] == "videomme" and tasks[0].answer == "B"
    with pytest.raises(BenchmarkImportError, match="not a benchmark these importers read"):
        read_lmms_task(DATA / "lmms" / "unknown.yaml")


def test_presets_drive_the_sampler():
    """LVBench's preset: 1,024 frames at 256·32·32 pixels on an hour-long video (InternVideo3's patch 16)."""
    from mcr.context import VideoRef
    from mcr.model.media.sampling import SamplingSpec, plan_sampling
    from mcr.model.media.video import VideoInfo

    info = VideoInfo(path="long.mp4", duration=3600.0, fps=30.0, width=1280, height=720, frame_count=108_000)
    for name, frames in (("lvbench", 1024), ("mlvu", 2048)):
        preset = get_preset(name)
        ref = VideoRef(path="long.mp4", **preset.video_settings().model_dump())  # as the agent builds it
        assert ref.message_part()["max_frames"] == preset.max_frames  # the cap reaches the model's renderer
        plan = plan_sampling(info, SamplingSpec.from_ref(ref, image_patch_size=16))
        assert plan.nframes == frames
        assert plan.height % 32 == 0 and plan.width % 32 == 0
        assert abs(plan.height * plan.width - 256 * 32 * 32) / (256 * 32 * 32) < 0.1
    task = apply_preset(TaskSpec(video=CLIP, question="q"), "egoschema")
    assert task.video_settings.fps == 4 and task.metadata["preset"]["source"] == "eval_egoschema.sh"
    prompt = choice_prompt("What is shown?", ["a dog", "a cat"])
    assert prompt.splitlines() == ["Select the best answer to the following multiple-choice question based on the video.",
                                   "What is shown?", "A. a dog", "B. a cat", "Answer with the option letter only."]


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("videomme", '[{"videoID": "vidAAA0001", "question": "q", "options": ["A. x", "B. y"], "answer": "B"}]',
         r"\(record 0\) field 'question_id': missing; this record has: answer, options, question, videoID"),
        ("videomme", '[{"videoID": "vidAAA0001", "question_id": "1", "question": "q", "options": ["A. x", "B. y"], '
                     '"answer": "Q"}]', r"\(record 0\) field 'answer': answer 'Q' is neither a letter"),
        ("videomme", '[{"videoID": "nope", "question_id": "1", "question": "q", "options": ["x", "y"], "answer": "A"}]',
         r"video 'nope' not found under .*--skip-missing"),
        ("longvideobench", '{"not": "a list"}', "expected a list of question records, found dict"),
        ("lvbench", '[{"video_path": "lvb_key01.mp4", "question": "q", "options": ["a", "b"], "answer": "A", '
                    '"time_reference": "soon"}]', r"field 'time_reference': time_reference 'soon' is not 'MM:SS-MM:SS'"),
        ("charades_sta", '[{"video": "CHA01.mp4", "caption": "x", "timestamp": [3, 3]}]', "the span .* is empty"),
        ("mlvu", "{not json", r"not valid JSON \(line 1"),
    ],
)
def test_bad_records_name_the_file_record_and_field(videos, tmp_path, fmt, content, message):
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(BenchmarkImportError, match=message) as info:
        import_benchmark(fmt, path, videos)
    assert str(path) in str(info.value)


def test_missing_videos_can_be_skipped(tmp_path):
    opts = ImportOptions(videos=tmp_path, skip_missing_videos=True)
    assert import_benchmark("videomme", DATA / "videomme.json", tmp_path, options=opts) == []
    assert opts.skipped == {"video not found": 2}


def test_unknown_format_preset_and_folders(videos):
    with pytest.raises(BenchmarkImportError, match="unknown benchmark format; known: videomme, mlvu"):
        import_benchmark("kinetics", DATA / "videomme.json", videos)
    with pytest.raises(BenchmarkImportError, match="videos folder not found"):
        import_benchmark("videomme", DATA / "videomme.json", videos / "absent")
    with pytest.raises(KeyError, match="unknown preset 'fast'"):
        import_benchmark("videomme", DATA / "videomme.json", videos, preset="fast")
    with pytest.raises(BenchmarkImportError, match="annotation file not found"):
        import_benchmark("videomme", DATA / "absent.json", videos)


def test_cli_import_writes_a_suite_mcr_eval_can_load(videos, tmp_path, capsys):
    out = tmp_path / "ego.yaml"
    code = main(["import", "egoschema", str(DATA / "egoschema" / "questions.json"), "--videos", str(videos),
                 "-o", str(out), "--policy", "offline"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: 1 tasks") and "skipped 1 (answer not in the annotations)" in printed
    (task,) = load_tasks(out)
    assert task.answer == "B" and task.policy.name == "offline" and task.video_settings.max_pixels == 128 * 32 * 32
    assert main(["import", "videomme", str(DATA / "videomme.json"), "--videos", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert "videos folder not found" in capsys.readouterr().err
    assert main(["import", "videomme", str(DATA / "videomme.json"), "--videos", str(videos), "-o", str(out),
                 "--preset", "none"]) == 0
    assert load_tasks(out)[0].video_settings.fps == 2.0  # the task default, no preset
