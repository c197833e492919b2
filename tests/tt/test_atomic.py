"""Every file is written whole or not at all, and a failed write is one line naming the file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ttexplore.tt import atomic
from ttexplore.tt.atomic import WriteError, human_size, write_atomic


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` that look like a temporary file of :func:`write_atomic`."""
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.mark.parametrize("content, expected", [(b"\x00\x01bytes", b"\x00\x01bytes"), ("text é", "text é".encode()),
                                               (lambda handle: handle.write(b"from a writer"), b"from a writer")])
def test_the_content_arrives_whole(tmp_path, content, expected):
    target = write_atomic(tmp_path / "out.bin", content)
    assert target.read_bytes() == expected and leftovers(tmp_path) == []


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_follows_the_umask(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    target.chmod(0o600)
    write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = write_atomic(tmp_path / "fresh.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("room", [0, 5, 100])
def test_a_full_disk_keeps_the_old_file_leaves_no_temporary_and_says_what_it_needed(tmp_path, full_disk, room):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old content")
    full_disk(room=room, free=1536)
    content = b"y" * 4096
    with pytest.raises(WriteError) as caught:
        write_atomic(target, content)
    assert target.read_bytes() == b"old content" and leftovers(tmp_path) == []
    message = str(caught.value)
    assert "\n" not in message and str(target) in message
    assert f"needed {human_size(len(content))}" in message and "1.5 KiB is free" in message
    assert caught.value.errno == errno.ENOSPC and caught.value.needed == len(content) and caught.value.free == 1536


def test_a_full_disk_leaves_an_absent_file_absent(tmp_path, full_disk):
    full_disk(room=10)
    with pytest.raises(WriteError):
        write_atomic(tmp_path / "new.json", "{}" * 100)
    assert os.listdir(tmp_path) == []


def test_a_writer_that_fills_the_disk_is_measured_for_the_message(tmp_path, full_disk):
    full_disk(room=3, free=0)

    def writer(handle):
        for _ in range(10):
            handle.write(b"0123456789")

    with pytest.raises(WriteError) as caught:
        write_atomic(tmp_path / "out.bin", writer)
    assert caught.value.needed == 100 and "needed 100 bytes and 0 bytes is free" in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_an_os_error_a_writer_turns_into_its_own_error_is_still_reported_as_the_full_disk(tmp_path, full_disk):
    full_disk(room=0)

    def writer(handle):
        try:
            handle.write(b"data")
        except OSError:
            raise RuntimeError("unexpected pos 64 vs 0") from None  # what torch.save does with it

    with pytest.raises(WriteError, match="no space left"):
        write_atomic(tmp_path / "out.pt", writer)
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_mid_write_removes_the_temporary_and_propagates(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"epoch 3")

    def writer(handle):
        handle.write(b"half of epoch 4")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, writer)
    assert target.read_bytes() == b"epoch 3" and leftovers(tmp_path) == []


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only"),
                                         (errno.EDQUOT, "quota"), (errno.EIO, "Input/output error")])
def test_a_failed_rename_is_mapped_and_cleaned_up(tmp_path, monkeypatch, code, words):
    target = tmp_path / "results.csv"
    target.write_text("old")

    def refuse(source, destination):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(WriteError) as caught:
        write_atomic(target, "new")
    assert words in str(caught.value) and str(target) in str(caught.value) and caught.value.errno == code
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_a_missing_folder_or_a_folder_in_the_way_is_one_line(tmp_path):
    with pytest.raises(WriteError, match="does not exist"):
        write_atomic(tmp_path / "nowhere" / "out.json", "{}")
    (tmp_path / "folder").mkdir()
    with pytest.raises(WriteError, match="is a folder"):
        write_atomic(tmp_path / "folder", "{}")
    assert write_atomic(tmp_path / "made" / "out.json", "{}", make_folder=True).read_text() == "{}"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="this system has no /dev/full")
def test_dev_full_is_one_line_naming_it():
    with pytest.raises(WriteError) as caught:
        write_atomic("/dev/full", b"x" * 100_000)
    assert str(caught.value).startswith("cannot write /dev/full: no space left on the device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="this system has no /dev/null")
def test_a_special_file_is_written_in_place_never_replaced():
    write_atomic("/dev/null", "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_pipe_is_written_in_place(tmp_path):
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_atomic(pipe, b"through the pipe")
    reader.join(10)
    assert received == [b"through the pipe"] and stat.S_ISFIFO(pipe.stat().st_mode)
