"""Reading many files in worker processes (`reading_pool`): the same readings, in the same order."""

from digitrec.read import load_reader
from digitrec.reading_pool import read_files
from digitrec.synth_numbers import iter_number_set


def test_worker_processes_read_what_one_reader_reads_in_order(tmp_path, mnist):
    paths = []
    for i, (img, _, _) in enumerate(iter_number_set(mnist.test_images, mnist.test_labels, 10, 3, "gap", seed=2)):
        img.save(tmp_path / f"{9 - i}.png")  # names out of the order they were written in
        paths.append(str(tmp_path / f"{9 - i}.png"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths.append(str(tmp_path / "broken.png"))
    one = load_reader()
    here = [one.read(p, name=p).to_dict() for p in paths]
    with read_files(paths, processes=2) as readings:
        there = [r.to_dict() for r in readings]
    assert there == here and there[-1]["error"] and sum(bool(r.get("text")) for r in there) >= 8


def test_a_process_reading_with_torch_models_runs_them_on_its_share_of_threads():
    # Each of `read_files`' processes runs `_start`: left to torch, each would take every core.
    import torch

    from digitrec import reading_pool
    from digitrec.model_file import inference_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(max(2, before))
        reading_pool._start(None, None, "torch")
        assert reading_pool._reader.uses_torch and torch.get_num_threads() == inference_threads()
    finally:
        torch.set_num_threads(before)
