"""A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager on loopback.

What controller-runtime's envtest does, for Python: the binaries come from scripts/k8s-testenv (built once
from the Go modules pinned in tools/k8s-testenv and cached), or from the directory that CELERIS_TEST_K8S_BIN
names. `KubeTestEnv` starts etcd (free 127.0.0.1 ports, data in a temporary directory), then kube-apiserver
with a serving certificate from a throwaway CA, static bearer tokens and RBAC, then kube-controller-manager
with only the controllers that turn Deployments into ReplicaSets into Pods and collect garbage. There is no
kubelet and no scheduler: Pods stay Pending. Every wait polls a condition (/health, /readyz, the API).

Two users: `admin` (group system:masters, may do anything) and the operator's service account by name,
`system:serviceaccount:celeris-system:celeris-operator`, which has no rights until a test applies the
project's RBAC (k8s/rbac/rbac.yaml), so the operator can be run with exactly what the project ships.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from tests.support.servers import free_port
from tests.support.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "k8s-testenv"
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager")
OPERATOR_USER = "system:serviceaccount:celeris-system:celeris-operator"
OPERATOR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:celeris-system", "system:authenticated")
ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")


class KubeEnvUnavailable(RuntimeError):
    """The binaries could not be found or built (the reason is the message)."""


class KubeEnvStartupError(RuntimeError):
    """A process did not come up; the message carries the logs of every process started."""


def find_bin_dir(build_timeout: float = 3600) -> Path:
    """CELERIS_TEST_K8S_BIN if set, else whatever scripts/k8s-testenv builds or has cached."""
    named = os.environ.get("CELERIS_TEST_K8S_BIN")
    if named:
        bin_dir = Path(named)
    else:
        try:
            done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=build_timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KubeEnvUnavailable(f"scripts/k8s-testenv could not run: {exc}") from exc
        if done.returncode != 0:
            raise KubeEnvUnavailable(f"scripts/k8s-testenv failed (exit {done.returncode}): {done.stderr[-3000:]}")
        lines = done.stdout.strip().splitlines()
        if not lines:
            raise KubeEnvUnavailable("scripts/k8s-testenv printed no bin directory")
        bin_dir = Path(lines[-1])
    missing = [p for p in PROGRAMS if not os.access(bin_dir / p, os.X_OK)]
    if missing:
        raise KubeEnvUnavailable(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise KubeEnvStartupError(f"openssl {' '.join(args)} failed: {done.stderr}")


def make_pki(directory: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1/localhost signed by it, and a service-account key.

    openssl, because the `cryptography` package is not among the project's dependencies.
    """
    if shutil.which("openssl") is None:
        raise KubeEnvUnavailable("openssl not installed")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=celeris-testenv-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=kube-apiserver", cwd=directory)
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=directory)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


def kubeconfig(url: str, ca_file: Path, user: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "testenv",
            "clusters": [{"name": "testenv", "cluster": {"server": url, "certificate-authority": str(ca_file)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": user,
                                                          "namespace": "default"}}]}


class KubeTestEnv:
    """etcd + kube-apiserver + kube-controller-manager on loopback, stopped and removed on exit."""

    def __init__(self, bin_dir: Path | str | None = None, startup_timeout: float = 120.0,
                 controllers: str = "deployment,replicaset,garbagecollector,namespace",
                 crds: list[Path | str] = ()) -> None:
        """`crds`: CustomResourceDefinition files or directories of them, installed (and Established) before
        the controller manager starts, as envtest's CRDInstallOptions do: the garbage collector then watches
        the custom resources from its start instead of finding them at its next 30 s discovery resync."""
        self.bin_dir = Path(bin_dir) if bin_dir else find_bin_dir()
        self.crds = [Path(c) for c in crds]
        self.startup_timeout = startup_timeout
        self.controllers = controllers
        self.dir: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.admin_token = secrets.token_hex(16)
        self.operator_token = secrets.token_hex(16)
        self.url = ""
        self.admin_kubeconfig = ""
        self.operator_kubeconfig = ""
        self.startup_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="celeris-kube-"))
        pki = self.dir / "pki"
        pki.mkdir()
        make_pki(pki)
        self.ca_file = pki / "ca.crt"
        self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfigs()
            self._install_crds()
            self._start_controller_manager()
        except Exception as exc:
            raise KubeEnvStartupError(f"{exc}\n{self.log_tail()}") from exc
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        # The reverse order of starting: the controller manager and the API server before their store.
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
        self.procs.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- processes ---------------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        assert self.dir is not None
        log = self.dir / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(self.bin_dir / name), *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, predicate, what: str) -> None:
        proc = self.procs[name]

        def ready() -> bool:
            if proc.poll() is not None:
                raise KubeEnvStartupError(f"{name} exited with code {proc.returncode} while waiting for {what}")
            return bool(predicate())

        wait_until(ready, timeout=self.startup_timeout, what=what, poll_s=0.1)

    def _start_etcd(self) -> None:
        assert self.dir is not None
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", [
            "--name=testenv", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=testenv=http://127.0.0.1:{peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync=true", "--log-level=warn",
        ])
        self._wait("etcd", lambda: self._get_json(self.etcd_url + "/health").get("health") == "true", "etcd /health")

    def _start_apiserver(self) -> None:
        assert self.dir is not None
        pki = self.dir / "pki"
        tokens = self.dir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},{ADMIN_USER},admin-uid,"{",".join(ADMIN_GROUPS)}"\n'
            f'{self.operator_token},{OPERATOR_USER},operator-uid,"{",".join(OPERATOR_GROUPS)}"\n')
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        self._spawn("kube-apiserver", [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            # The endpoint reconciler refuses a loopback address for the `kubernetes` Service's endpoints.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={pki}", f"--tls-cert-file={pki / 'server.crt'}",
            f"--tls-private-key-file={pki / 'server.key'}",
            f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            # Required flags for issuing and checking service-account tokens (none are issued here).
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            # No token controller and no kubelet: Pods must not wait for a service-account token.
            "--disable-admission-plugins=ServiceAccount",
            # Never reached: the range only has to be valid (Services get a ClusterIP from it).
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true", "--v=1",
        ])
        self._wait("kube-apiserver", lambda: self._get_text(self.url + "/readyz") == "ok", "kube-apiserver /readyz")
        # Ready also means RBAC's bootstrap roles and the default namespace exist.
        self._wait("kube-apiserver", self._bootstrapped, "the default namespace and bootstrap RBAC")

    def _bootstrapped(self) -> bool:
        return (self._status(self.url + "/api/v1/namespaces/default") == 200
                and self._status(self.url + "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin") == 200)

    def _install_crds(self) -> None:
        import yaml

        files = [f for c in self.crds for f in (sorted(c.glob("*.yaml")) if c.is_dir() else [c])]
        base = self.url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for path in files:
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                request = urllib.request.Request(base, data=json.dumps(doc).encode(), method="POST", headers={
                    "Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"})
                try:
                    urllib.request.urlopen(request, timeout=30, context=self._ssl).close()
                except urllib.error.HTTPError as exc:
                    raise KubeEnvStartupError(f"installing {path}: HTTP {exc.code} {exc.read()[:2000]!r}") from exc
                name = doc["metadata"]["name"]
                self._wait("kube-apiserver", lambda url=f"{base}/{name}": self._established(url), f"CRD {name} Established")

    def _established(self, url: str) -> bool:
        conditions = (self._get_json(url).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def _write_kubeconfigs(self) -> None:
        assert self.dir is not None
        admin, operator = self.dir / "admin.kubeconfig", self.dir / "operator.kubeconfig"
        # JSON is YAML: every kubeconfig reader takes it.
        admin.write_text(json.dumps(kubeconfig(self.url, self.ca_file, ADMIN_USER, self.admin_token), indent=1))
        operator.write_text(json.dumps(kubeconfig(self.url, self.ca_file, "celeris-operator", self.operator_token),
                                       indent=1))
        self.admin_kubeconfig, self.operator_kubeconfig = str(admin), str(operator)

    def _start_controller_manager(self) -> None:
        port = free_port()
        self.controller_manager_url = f"https://127.0.0.1:{port}"
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={self.admin_kubeconfig}",
            f"--authentication-kubeconfig={self.admin_kubeconfig}",
            f"--authorization-kubeconfig={self.admin_kubeconfig}",
            f"--controllers={self.controllers}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.dir / 'kcm-certs'}", "--v=1",
        ])
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its own self-signed serving certificate, on loopback
        self._wait("kube-controller-manager",
                   lambda: self._get_text(self.controller_manager_url + "/healthz", context=insecure, token="") == "ok",
                   "kube-controller-manager /healthz")

    # -- HTTP --------------------------------------------------------------------------------------------

    def _request(self, url: str, context: ssl.SSLContext | None = None, token: str | None = None):
        headers = {}
        if url.startswith("https://") and token != "":
            headers["Authorization"] = f"Bearer {token or self.admin_token}"
        request = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(request, timeout=5,
                                      context=(context or self._ssl) if url.startswith("https://") else None)

    def _get_text(self, url: str, **kw: Any) -> str:
        try:
            with self._request(url, **kw) as response:
                return response.read().decode()
        except (OSError, urllib.error.URLError):
            return ""

    def _get_json(self, url: str, **kw: Any) -> dict:
        text = self._get_text(url, **kw)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def _status(self, url: str) -> int:
        try:
            with self._request(url) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, urllib.error.URLError):
            return 0

    # -- diagnostics -------------------------------------------------------------------------------------

    def log_tail(self, chars: int = 4000) -> str:
        parts = []
        for name, path in self.logs.items():
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = "(no log)"
            parts.append(f"----- {name} log ({path}) -----\n{text[-chars:]}")
        return "\n".join(parts)

    def kubectl(self) -> str | None:
        """The venv's kubectl (scripts/install --system puts it there), else one on PATH."""
        for candidate in (ROOT / ".venv" / "bin" / "kubectl", Path(sys.executable).parent / "kubectl",
                          shutil.which("kubectl")):
            if candidate and os.access(candidate, os.X_OK):
                return str(candidate)
        return None
