"""The relay: the smallest client of a pod's resident agent, run by the engine's execs as source text.

`python -m netpolcheck.probe ask` starts an interpreter with its site-packages and imports this package
before it asks anything: about 75 ms of CPU a call, so nine source pods asking at once on two cores made
every exec round about half a second (docs/probe.md, "The relay"). The engine sends this file's code
instead, as `python -I -S -c CODE SECONDS`: no site-packages, nothing of this package, and only the
interpreter's built-in and two small compiled modules (`_socket`, `_sha2`; not `socket`, `json` or
`os`, which import `enum` and `re`), so it is up in about 12 ms. It reads one whole request on stdin (the
JSON object the agent takes, built by the caller), hands it to this pod's agent, waits at most SECONDS
for the answer and copies it to stdout unread: the caller parses it and reads `error` and `failure`.
Exit codes: 0 the answer was copied; 4 no agent answers (nothing ran); 2 the relay failed (usage, a
late or oversized answer), one line on stderr.

So this module must stay self-contained: journal.py and ask.py take the paths from here, never the
reverse, and nothing here may import from `netpolcheck`.
"""

import _socket
import posix
import sys

# the compiled SHA-256 alone: hashlib would load OpenSSL first, a few ms more on every exec
try:
    from _sha2 import sha256  # Python 3.12 and later (the probe image's)
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        from hashlib import sha256

PATH_ENV = "NETPOLCHECK_PROBE_JOURNAL"
DEFAULT_DIRECTORY = "/tmp/netpolcheck-probe"
SOCKET_DIRECTORY = "agent"  # beside the journal, 0700
MAX_ANSWER_BYTES = 64 * 1024 * 1024
PROG = "netpolcheck relay"
EXIT_FAILED = 2
EXIT_NO_AGENT = 4


def default_journal_path() -> str:
    """$NETPOLCHECK_PROBE_JOURNAL, else one file per pod (HOSTNAME is the pod name) under /tmp, so serves
    that share a filesystem (the embedded cluster, several netns on one machine) never share a journal."""
    environ, encoding = posix.environ, sys.getfilesystemencoding()
    if PATH_ENV.encode() in environ:
        return environ[PATH_ENV.encode()].decode(encoding, "surrogateescape")
    host = (environ.get(b"HOSTNAME") or b"").decode(encoding, "surrogateescape") or posix.uname().nodename
    return f"{DEFAULT_DIRECTORY}/journal-{host.replace('/', '_')}.jsonl"


def absolute(path: str) -> str:
    """`path` made absolute against the working directory, `.`, `..` and repeated slashes resolved."""
    if not path.startswith("/"):
        path = f"{posix.getcwd()}/{path}"
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def socket_path(journal_path: str) -> str:
    """The agent socket of the serve that owns `journal_path` (client and server agree on it); a hash of
    the journal's name keeps it short (a Unix socket path has at most 107 bytes) and one per serve."""
    directory, _, name = absolute(journal_path).rpartition("/")
    digest = sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{directory}/{SOCKET_DIRECTORY}/{digest}.sock"


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return code


def relay(request: bytes, seconds: float) -> int:
    """Hand `request` to this pod's agent and copy its answer to stdout; the exit code as above."""
    path = socket_path(default_journal_path())
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(seconds)
        try:
            conn.connect(path)
        except OSError as exc:  # missing, refused (a crashed serve), or not ours to reach
            return _fail(EXIT_NO_AGENT, f"no resident agent at {path} ({exc.strerror or exc})")
        conn.sendall(request)
        conn.shutdown(_socket.SHUT_WR)
        chunks, size = [], 0
        try:
            while chunk := conn.recv(1 << 16):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    too_big = f"the agent's answer is larger than {MAX_ANSWER_BYTES >> 20} MiB"
                    return _fail(EXIT_FAILED, too_big)
                chunks.append(chunk)
        except TimeoutError:
            return _fail(EXIT_FAILED, f"the agent's answer did not arrive within {seconds:g} s")
    finally:
        conn.close()
    sys.stdout.buffer.write(b"".join(chunks))
    sys.stdout.flush()
    return 0


def main(argv: list[str]) -> int:
    """`python -I -S -c CODE SECONDS` (argv[0] is "-c"): the request on stdin."""
    try:
        seconds = float(argv[1])
        if not 0 < seconds <= 86400:
            raise ValueError
    except (IndexError, ValueError):
        return _fail(EXIT_FAILED, "usage: relay SECONDS (the longest wait for the answer, up to 86400)")
    return relay(sys.stdin.buffer.read(), seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
