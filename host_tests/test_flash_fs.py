"""The host store is crash-safe the way Linux requires (issue 12.1): a file's data is
fsynced before it is renamed into place, and the directory is fsynced after the rename (and
after creating the folder or removing a file), or the rename itself may not survive a
crash. The store creates files only by replace()."""
import os
import stat

from drivers import flash_fs


def record_syncs(monkeypatch):
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def rename(a, b):
        events.append(("rename", os.path.basename(b)))
        real_rename(a, b)

    monkeypatch.setattr(flash_fs, "_fsync", fsync)      # the file's data
    monkeypatch.setattr(os, "fsync", fsync)             # drivers/host_sync: the folder
    monkeypatch.setattr(os, "rename", rename)
    return events


def test_replace_fsyncs_file_then_renames_then_fsyncs_the_directory(tmp_path, monkeypatch):
    fs = flash_fs.FolderFs(str(tmp_path / "store"))
    fs.ensure()
    events = record_syncs(monkeypatch)
    fs.replace("s.1", (b"snapshot",))
    assert events == [("fsync", "file"), ("rename", "s.1"), ("fsync", "dir")]


def test_new_file_and_removal_make_the_directory_durable(tmp_path, monkeypatch):
    fs = flash_fs.FolderFs(str(tmp_path / "store"))
    events = record_syncs(monkeypatch)
    fs.ensure()
    assert events == [("fsync", "dir")]             # the store folder's entry in its parent
    del events[:]
    fs.replace("j.1", (b"header\n",))               # how the store creates a file
    assert events == [("fsync", "file"), ("rename", "j.1"), ("fsync", "dir")]
    del events[:]
    fs.append("j.1", b"b\n")                        # an existing file: data only
    assert events == [("fsync", "file")]
    del events[:]
    fs.remove("j.1")
    assert events == [("fsync", "dir")]


def test_without_fsync_nothing_is_synced(tmp_path, monkeypatch):
    """MicroPython (no os.fsync): littlefs commits on close and rename; nothing to do."""
    monkeypatch.setattr(flash_fs, "_fsync", None)
    monkeypatch.setattr(flash_fs, "_sync_dir", None)
    fs = flash_fs.FolderFs(str(tmp_path / "store"))
    fs.ensure()
    fs.replace("s.1", (b"x",))
    with fs.open_read("s.1") as f:
        assert f.read() == b"x"
