"""bai's test-only patches of the Backend.AI dummy agent (real-stack tests only).

Loaded from PYTHONPATH by the agent process that up.sh starts; the installed package is never
edited. The dummy agent fakes containers; these patches give each fake container the one thing
bai needs of a real one, an SSH server, and keep the agent from forgetting its kernels:

1. ``DummyKernelCreationContext.start_container`` also starts a local sshd for the kernel (its
   own free port on 127.0.0.1, the stack's host key and authorized key: the stack's
   ``sshd/sshd_config``), and ``DummyAgent.get_public_service_ports`` (which returns nothing in
   the dummy agent, so the manager's tcpproxy would answer 404) returns the session's ports with
   ``sshd`` mapped to it. The manager then dials ``kernel_host:host_port`` = 127.0.0.1:<port>.
2. ``DummyAgent.destroy_kernel`` also stops that sshd and its connections (as a container's
   end would), so a tunnel open through a destroyed session ends.
3. ``DummyAgent.enumerate_containers`` returns nothing: within a minute the agent's lifecycle
   sync forgets every kernel and the tcpproxy answers 500. Here the kernels in the agent's
   registry are reported as running containers.
"""

import contextvars
import importlib.abc
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time

_TARGET = "ai.backend.agent.dummy.agent"
# kernel id -> the Popen of its sshd
_sshds = {}
# The sshd port of the kernel being created (start_container and get_public_service_ports run
# in the same task, one after the other).
_sshd_port = contextvars.ContextVar("bai_realstack_sshd_port", default=None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid):
    """(ppid, start time) of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[1]), rest[19]


def _pidfile(kernel_id):
    return os.path.join(os.environ["BAI_REALSTACK_DIR"], "pids", f"sshd-{kernel_id}.pid")


def _start_sshd(kernel_id):
    """Starts the kernel's sshd (its own session: pid = process group) and records it in the
    stack's pids/ folder as "PID STARTTIME", like up.sh's servers, for the teardown."""
    base = os.environ["BAI_REALSTACK_DIR"]
    port = _free_port()
    with open(os.path.join(base, "logs", f"sshd-{kernel_id}.log"), "ab") as log:
        proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(base, "sshd", "sshd_config"),
             "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _sshds[str(kernel_id)] = proc
    with open(_pidfile(kernel_id), "w") as f:
        f.write(f"{proc.pid} {_stat(proc.pid)[1]}\n")
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return port


def _stop_sshd(kernel_id):
    """SIGKILL to the kernel's sshd and everything below it: each connection's sshd calls
    setsid(), so only the parent links find them (as a container's end would cut them)."""
    proc = _sshds.pop(str(kernel_id), None)
    if proc is None:
        return
    parents = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                parents[int(pid)] = _stat(pid)[0]
            except (OSError, IndexError):
                pass
    doomed, frontier = [proc.pid], [proc.pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in doomed:
                doomed.append(child)
                frontier.append(child)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()
    try:
        os.remove(_pidfile(kernel_id))
    except OSError:
        pass


def _patch(module):
    from ai.backend.common.docker import LabelName
    from ai.backend.common.types import ContainerId, ContainerStatus, ServicePortProtocols
    from ai.backend.agent.types import Container

    agent_cls = module.DummyAgent
    ctx_cls = module.DummyKernelCreationContext

    original_start = ctx_cls.start_container

    async def start_container(self, kernel_obj, *args, **kwargs):
        data = await original_start(self, kernel_obj, *args, **kwargs)
        _sshd_port.set(_start_sshd(kernel_obj.kernel_id))
        return data

    def get_public_service_ports(self, service_ports):
        port_no = _sshd_port.get()
        out = []
        for port in service_ports:
            if port["protocol"] == ServicePortProtocols.INTERNAL:
                continue
            port = dict(port)
            if port["name"] == "sshd" and port_no is not None:
                port["host_ports"] = [port_no] * len(port["container_ports"])
            out.append(port)
        return out

    original_destroy = agent_cls.destroy_kernel

    async def destroy_kernel(self, kernel_id, container_id):
        _stop_sshd(kernel_id)
        return await original_destroy(self, kernel_id, container_id)

    async def enumerate_containers(self, status_filter=None):
        if status_filter is not None and ContainerStatus.RUNNING not in status_filter:
            return []
        out = []
        for kernel_id, kernel in list(self.kernel_registry.items()):
            labels = {
                LabelName.AGENT_ID: str(self.id),
                LabelName.KERNEL_ID: str(kernel_id),
                LabelName.SESSION_ID: str(kernel.session_id),
            }
            container = Container(
                id=ContainerId(str(kernel_id)),
                status=ContainerStatus.RUNNING,
                image=str(getattr(kernel, "image", "")),
                labels=labels,
                ports=[],
                backend_obj=None,
            )
            out.append((kernel_id, container))
        return out

    ctx_cls.start_container = start_container
    agent_cls.get_public_service_ports = get_public_service_ports
    agent_cls.destroy_kernel = destroy_kernel
    agent_cls.enumerate_containers = enumerate_containers


class _Finder(importlib.abc.MetaPathFinder):
    """Patches the dummy agent module right after it is first imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("BAI_REALSTACK_PATCH_AGENT") == "1":
    sys.meta_path.insert(0, _Finder())
