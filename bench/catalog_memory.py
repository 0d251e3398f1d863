"""Resident memory of server processes, sampled from outside while a request runs."""

import threading
from pathlib import Path

import psutil

MB = 1024 * 1024


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of `pid`; False where not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss(pid: int) -> int | None:
    """VmHWM: the kernel's own peak RSS, which no sampling interval can miss."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class RssSampler:
    """Samples the RSS of some processes every `interval_s` in a background thread."""

    def __init__(self, pids: list[int], interval_s: float = 0.05):
        self.processes = {pid: psutil.Process(pid) for pid in pids}
        self.interval_s = interval_s
        self.baseline = {pid: p.memory_info().rss for pid, p in self.processes.items()}
        self.peak = dict(self.baseline)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, proc in self.processes.items():
                self.peak[pid] = max(self.peak[pid], proc.memory_info().rss)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def busiest(self) -> int:
        """The process whose RSS grew most (the one that served the request)."""
        return max(self.processes, key=lambda pid: self.peak[pid] - self.baseline[pid])
