"""TLS material for the sandbox's HTTPS emulators.

MSAL refuses any authority that is not ``https://``, so the Graph/login emulator must speak TLS.
The sandbox makes its own throw-away certificate authority with ``trustme`` and issues one server
certificate for ``127.0.0.1`` and ``localhost``. Clients trust it by passing ``ca.pem`` explicitly
(``SAFETYAMP_CA_BUNDLE``); nothing is installed into a system or global trust store.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class SandboxCerts:
    """Paths of the sandbox CA certificate and the server certificate chain and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def ensure_certs(directory: Path) -> SandboxCerts:
    """Return the sandbox certificates in ``directory``, creating them when absent or unusable.

    Existing files are reused so that a client holding the old ``ca.pem`` keeps working across
    sandbox restarts.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    certs = SandboxCerts(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
    if _reusable(certs):
        return certs
    ca = trustme.CA(organization_name="safetyamp-sandbox")
    server = ca.issue_cert(*SERVER_NAMES)
    ca.cert_pem.write_to_path(str(certs.ca_path))
    with open(certs.cert_path, "wb") as chain:
        for pem in server.cert_chain_pems:
            chain.write(pem.bytes())
    _write_private(certs.key_path, server.private_key_pem.bytes())
    return certs


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _reusable(certs: SandboxCerts) -> bool:
    if not (certs.ca_path.is_file() and certs.cert_path.is_file() and certs.key_path.is_file()):
        return False
    try:
        ca = x509.load_pem_x509_certificate(certs.ca_path.read_bytes())
        server = x509.load_pem_x509_certificates(certs.cert_path.read_bytes())[0]
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if server.issuer != ca.subject:
        return False
    ip_names = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    dns_names = set(names.get_values_for_type(x509.DNSName))
    for name in SERVER_NAMES:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if name not in dns_names:
                return False
        else:
            if name not in ip_names:
                return False
    return True
