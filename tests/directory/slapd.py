"""A throwaway OpenLDAP `slapd` on 127.0.0.1 for the directory driver tests.

Debian's `slapd` (scripts/test installs it when missing). Each server gets its
own temporary directory: a cn=config database built with `slapadd` from an
LDIF generated here (mdb backend, the core, cosine and inetOrgPerson schemas,
and a tiny schema with the Active Directory attributes MiCollab IDS maps by
default: sAMAccountName, ipPhone, otherTelephone, department, under their
Microsoft OIDs, in an auxiliary class `adUser`: Debian's msuser schema needs
AD's server-managed attributes on every entry), and an empty suffix with one
organisational unit. Startup waits are bounded; the process is
killed at teardown whatever the test did.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson")
SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "test-root-password-not-a-secret"
BASE_OU = f"ou=people,{SUFFIX}"
START_TIMEOUT = 20.0
# The entries the AD preset writes in this directory: inetOrgPerson plus the AD attributes.
AD_OBJECT_CLASSES = ["inetOrgPerson", "adUser"]

_STRING = "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
_STRING += "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15"
AD_SCHEMA = f"""dn: cn=adcompat,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adcompat
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' {_STRING} SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.721 NAME 'ipPhone' {_STRING} SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.2.18 NAME 'otherTelephone' {_STRING} )
olcAttributeTypes: ( 1.2.840.113556.1.2.141 NAME 'department' {_STRING} SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.99999.1.1 NAME 'adUser' AUXILIARY
  MAY ( sAMAccountName $ ipPhone $ otherTelephone $ department ) )
"""


def missing() -> str | None:
    """Why a slapd cannot be started here, or None."""
    for tool in (SLAPD, SLAPADD, shutil.which("ldapmodify") or "ldapmodify"):
        if not Path(tool).exists():
            return (
                f"{tool} is not installed: scripts/test installs Debian's slapd and "
                "ldap-utils (apt-get install slapd ldap-utils)"
            )
    for s in SCHEMAS:
        if not (SCHEMA_DIR / f"{s}.ldif").exists():
            return f"{SCHEMA_DIR / s}.ldif is missing (Debian's slapd package ships it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed:
    (ca.pem, server.pem, server.key)."""
    ca_key, ca, key, csr, cert = (
        root / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=provgit test CA",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(root / "san.ext"),
    )
    return ca, cert, key


# The content synchronisation provider (RFC 4533): refreshes with a cookie
# cost O(changes); its session log names deletions without a present phase.
SYNCPROV = (
    "dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n"
    "objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\nolcSpSessionlog: 100000\n"
)


def config_ldif(
    db_dir: Path, tls: tuple[Path, Path, Path] | None = None, syncprov: bool = True
) -> str:
    tls_lines = (
        f"olcTLSCACertificateFile: {tls[0]}\nolcTLSCertificateFile: {tls[1]}\n"
        f"olcTLSCertificateKeyFile: {tls[2]}\n"
        if tls
        else ""
    )
    parts = [
        f"dn: cn=config\nobjectClass: olcGlobal\ncn: config\n{tls_lines}",
        "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
        f"olcModulePath: {MODULE_DIR}\nolcModuleLoad: back_mdb\n"
        + ("olcModuleLoad: syncprov\n" if syncprov else ""),
        "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n",
    ]
    for s in SCHEMAS:
        parts.append((SCHEMA_DIR / f"{s}.ldif").read_text())
    parts.append(AD_SCHEMA)
    parts.append(
        "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
        "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\nolcSizeLimit: unlimited\n"
    )
    parts.append(
        "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n"
        "olcDatabase: {0}config\nolcAccess: {0}to * by * none\n"
    )
    # Paged results need no limit for the root DN; the size limit stays at
    # 500 for everyone else, like a real directory's default.
    parts.append(
        "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
        f"objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {SUFFIX}\n"
        f"olcDbDirectory: {db_dir}\nolcRootDN: {ROOT_DN}\nolcRootPW: {ROOT_PW}\n"
        "olcDbMaxSize: 1073741824\nolcDbNoSync: TRUE\n"
        "olcLimits: * size.soft=500 size.pr=unlimited\n"
        "olcDbIndex: objectClass eq\nolcDbIndex: entryCSN eq\nolcDbIndex: entryUUID eq\n"
        "olcAccess: {0}to * by * read\n"
    )
    if syncprov:
        parts.append(SYNCPROV)
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def data_ldif() -> str:
    return (
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example\n\n"
        f"dn: {BASE_OU}\nobjectClass: organizationalUnit\nou: people\n"
    )


@dataclass
class Slapd:
    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    tls_port: int | None = None
    ca_file: Path | None = None
    command: list[str] = field(default_factory=list)

    @property
    def tls_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def ldap(self, tool: str, ldif: str) -> subprocess.CompletedProcess[str]:
        """Run an ldap-utils tool (ldapmodify, ldapadd, ldapdelete) as the root DN:
        the out-of-band edit an admin makes on the directory."""
        done = subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=ldif,
            text=True,
            capture_output=True,
            timeout=60,
        )
        if done.returncode:
            raise AssertionError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def restart(self) -> None:
        """Stop and start the same server (same data, same port): what it kept
        only in memory (syncprov's session log) is gone."""
        self.stop()
        self.proc = _launch(self.root, self.command, self.port)

    def searches(self) -> list[int]:
        """With `stats`: how many entries each search so far sent, in order."""
        log = (self.root / "slapd.log").read_text(errors="replace")
        return [int(n) for n in re.findall(r"SEARCH RESULT tag=101 .*?nentries=(\d+)", log)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start(
    root: Path,
    seed: str = "",
    tls: bool = False,
    syncprov: bool = True,
    stats: bool = False,
) -> Slapd:
    """A fresh slapd under `root`, listening on a free loopback port (and, with
    `tls`, ldaps:// on another, StartTLS on the first, a throwaway CA's cert).
    `syncprov`: offer the content synchronisation control (RFC 4533), as a
    directory set up for provgit does; without it, as Active Directory or an
    OpenLDAP without the overlay. `stats`: log each operation to slapd.log
    (slapd's `stats` level: a search's result line says how many entries it sent)."""
    conf = root / "slapd.d"
    db = root / "db"
    conf.mkdir(parents=True)
    db.mkdir()
    certs = make_certificates(root) if tls else None
    (root / "config.ldif").write_text(config_ldif(db, certs, syncprov))
    (root / "data.ldif").write_text(data_ldif() + ("\n" + seed if seed else ""))
    subprocess.run(
        [SLAPADD, "-n", "0", "-F", str(conf), "-l", str(root / "config.ldif")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [SLAPADD, "-q", "-F", str(conf), "-b", SUFFIX, "-l", str(root / "data.ldif")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # A free port is closed again before slapd binds it: another process on
    # the machine (a connect's ephemeral port, another session's server) may
    # take it meanwhile. Then slapd cannot bind, and the next pair is tried.
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        tls_port = free_port() if tls else None
        urls = f"ldap://127.0.0.1:{port}/" + (f" ldaps://127.0.0.1:{tls_port}/" if tls else "")
        # -d: stay in the foreground (so the process is ours to kill); 0 is quiet.
        command = [SLAPD, "-d", "stats" if stats else "0", "-F", str(conf), "-h", urls]
        try:
            proc = _launch(root, command, port)
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        server = Slapd(proc, port, root, tls_port, certs[0] if certs else None)
        server.command = command
        return server
    raise AssertionError("unreachable")


def _in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class PortTaken(RuntimeError):
    """slapd could not bind its port: another process took it first."""


PORT_ATTEMPTS = 3


def _launch(root: Path, command: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start slapd and wait (bounded) until it listens on `port`."""
    log = (root / "slapd.log").open("ab")
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LC_ALL": "C"}
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            said = (root / "slapd.log").read_text(errors="replace")[-2000:]
            # Quiet (-d 0), slapd says nothing of a failed bind: the port says.
            error = PortTaken if _in_use(port) else RuntimeError
            raise error(f"slapd exited with {proc.returncode}: {said}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                raise RuntimeError(
                    f"slapd did not listen on {port} within {START_TIMEOUT}s"
                ) from None
            time.sleep(0.05)
