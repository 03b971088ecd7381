"""The broker as a child process for the bench scripts: on loopback, its ports picked by the kernel
and read back from its log."""
import os
import re
import signal
import subprocess
import threading


class PinnedCpus:
    """The CPUs a bench gives the broker and its client, apart: the first half of this process's
    CPUs and the rest, or SERVER_CPUS and CLIENT_CPUS (comma-separated CPU numbers)."""

    def __init__(self, script):
        self.all = sorted(os.sched_getaffinity(0))
        if len(self.all) < 2:
            raise SystemExit(f"{script} needs at least 2 CPUs: the broker and its client must "
                             "not share one")
        half = len(self.all) // 2
        self.server = self._from_environment("SERVER_CPUS", set(self.all[:half]))
        self.client = self._from_environment("CLIENT_CPUS", set(self.all[half:]))

    @staticmethod
    def _from_environment(name, default):
        text = os.environ.get(name)
        return {int(cpu) for cpu in text.split(",")} if text else default

    def start_broker(self, binary, extra):
        """The broker on the server CPUs; it inherits the mask, so it sizes its threads from
        them."""
        os.sched_setaffinity(0, self.server)
        try:
            return BrokerProcess(binary, extra)
        finally:
            os.sched_setaffinity(0, set(self.all))

    def client_command(self, *command):
        """`command` run on the client CPUs."""
        return ["taskset", "-c", ",".join(map(str, sorted(self.client))), *command]


class BrokerProcess:
    def __init__(self, binary, extra=()):
        args = [binary, "broker", "--broker.host=127.0.0.1", "--broker.port=0",
                "--monitoring.port=127.0.0.1:0", *extra]
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.ports = {}  # by listener: "api", "metrics"
        for line in self.process.stderr:
            match = re.search(r"listener=(\w+) address=\S+ port=(\d+)", line)
            if match:
                self.ports[match.group(1)] = int(match.group(2))
            if "msg=ready" in line:
                break
        if "api" not in self.ports or "metrics" not in self.ports:
            raise SystemExit("the broker did not start")
        # A broker blocked on a full stderr pipe would stall the measurement.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def status_bytes(self, field):
        """A size from /proc/PID/status (VmRSS, VmHWM) in bytes."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(field + " missing")

    def reset_peak(self):
        """Starts VmHWM again from the current RSS."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")

    def stop(self):
        """SIGTERM, and the exit status; a broker that has not exited after 30 s is killed."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise SystemExit("the broker did not exit within 30 s of SIGTERM: killed")
