"""Native libraries' terminal output (C++ logging straight to file descriptor 2) goes to the log file."""

import os


def test_native_and_printed_output_go_to_the_log_and_the_terminal_comes_back(tmp_path, monkeypatch, capfd):
    """Fails without native_output_to_log's dup2 (the C++-style line reaches the terminal, as `zoo build`
    printed ExecuTorch's [cpuinfo_utils.cpp:...] lines) or without restoring the descriptors after the block."""
    from harness.library_log import native_output_to_log

    monkeypatch.setenv("HARNESS_LOG", str(tmp_path / "h.log"))
    with native_output_to_log():
        os.write(2, b"[cpuinfo_utils.cpp:71] Reading file /sys/devices/soc0/image_version\n")  # as C++ writes
        os.write(1, b"native stdout line\n")
        print("quantize (torchao) noise")
    os.write(2, b"harness's own line\n")
    print("after the block")
    out, err = capfd.readouterr()
    assert "cpuinfo_utils" not in err and "native stdout" not in out and "quantize" not in out
    assert err == "harness's own line\n" and out == "after the block\n"
    logged = (tmp_path / "h.log").read_text()
    assert "[cpuinfo_utils.cpp:71]" in logged and "native stdout line" in logged and "quantize (torchao)" in logged


def test_a_home_folder_that_does_not_exist_is_never_made(tmp_path, monkeypatch):
    """HOME=/nonexistent (a service account) made /nonexistent/.local/state/harness (an outside probe)."""
    from harness.library_log import log_path

    missing = tmp_path / "nonexistent"
    monkeypatch.delenv("HARNESS_LOG", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(missing))
    assert not log_path().is_relative_to(missing) and not missing.exists()
