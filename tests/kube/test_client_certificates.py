"""Client certificates given in memory (kubeconfig ``client-key-data``) leave no key on disk.

The certificate below is a self-signed test certificate for 127.0.0.1, valid from 2000 to
9999, made with the ``openssl`` CLI for these tests only (no ``cryptography`` package here):
it serves as the server's certificate, the client's certificate and the CA of both.
"""

from __future__ import annotations

import ssl
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from kubesteps.kube.client import Credentials, KubeClient, _spill, _ssl_context

CERT = b"""-----BEGIN CERTIFICATE-----
MIIBkzCCATigAwIBAgIBATAKBggqhkjOPQQDAjAZMRcwFQYDVQQDDA5rdWJlc3Rl
cHMtdGVzdDAgFw0wMDAxMDEwMDAwMDBaGA85OTk5MTIzMTIzNTk1OVowGTEXMBUG
A1UEAwwOa3ViZXN0ZXBzLXRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASu
ue2z01fg3mafDj1FMJVV/T4CqNFkltuWkHf1k0hqrWLgVatyK6PmTgBgu698b0VG
sp2a2DOoX0RF/tf5KxwEo28wbTAPBgNVHREECDAGhwR/AAABMAwGA1UdEwEB/wQC
MAAwDgYDVR0PAQH/BAQDAgeAMB0GA1UdJQQWMBQGCCsGAQUFBwMBBggrBgEFBQcD
AjAdBgNVHQ4EFgQUggcuIjEWQ7p3hzm9s5nbJ41M5ocwCgYIKoZIzj0EAwIDSQAw
RgIhAIsuax7bGPYF+Zy/tDGqMAFGe/NxJhIozDN9wyslx5ePAiEA/YaGgx+vRKtH
VFXflMz2yYHeeGtp8ZtuMCLxyrQ3BlE=
-----END CERTIFICATE-----
"""
KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2Jp7blSwUqpBHXHA
IpPf30BMQF0+sJeq6ttFoFBQaLyhRANCAASuue2z01fg3mafDj1FMJVV/T4CqNFk
ltuWkHf1k0hqrWLgVatyK6PmTgBgu698b0VGsp2a2DOoX0RF/tf5KxwE
-----END PRIVATE KEY-----
"""
# A key that does not belong to CERT.
OTHER_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+yl4FdR9g6xDCYcJ
/epTnvfWvm4m94Bf0Jb3zNv7wXmhRANCAASHKPrCEabbl1Y5rnJu04YQDYF7RG19
2dZiEBzvsVZ9j9scOMnvzkWC5AmDJFAzrXMhuuQrY6aDlobTYx9B1+y1
-----END PRIVATE KEY-----
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """The directory ``tempfile`` uses for the test, to see what is left in it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*"))


@pytest_asyncio.fixture
async def mutual_tls_server(tmp_path: Path) -> AsyncIterator[str]:
    """An HTTPS server that requires a client certificate signed by CERT; its URL.

    It answers with the common name of the client certificate it was shown.
    """
    (tmp_path / "server.pem").write_bytes(CERT + KEY)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=CERT.decode())
    context.load_cert_chain(tmp_path / "server.pem")
    context.verify_mode = ssl.CERT_REQUIRED

    async def version(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
        return web.json_response({"client": subject.get("commonName", "")})

    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"https://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_in_memory_client_certificates_authenticate_and_leave_nothing_on_disk(
    mutual_tls_server: str, scratch: Path
) -> None:
    credentials = Credentials(
        server=mutual_tls_server, ca_data=CERT, certificate_data=CERT, private_key_data=KEY
    )
    async with KubeClient(credentials) as client:
        answer = await client.request("GET", "/version")
    assert answer == {"client": "kubesteps-test"}
    assert leftovers(scratch) == []


def test_the_files_are_gone_when_the_key_does_not_fit_the_certificate(scratch: Path) -> None:
    credentials = Credentials(
        server="https://127.0.0.1:1",
        ca_data=CERT,
        certificate_data=CERT,
        private_key_data=OTHER_KEY,
    )
    with pytest.raises(ssl.SSLError):
        _ssl_context(credentials)
    assert leftovers(scratch) == []


def test_certificate_files_given_by_path_are_used_and_kept(tmp_path: Path, scratch: Path) -> None:
    (tmp_path / "client.crt").write_bytes(CERT)
    (tmp_path / "client.key").write_bytes(KEY)
    credentials = Credentials(
        server="https://127.0.0.1:1",
        ca_data=CERT,
        certificate_path=str(tmp_path / "client.crt"),
        private_key_path=str(tmp_path / "client.key"),
    )
    assert isinstance(_ssl_context(credentials), ssl.SSLContext)
    assert (tmp_path / "client.key").read_bytes() == KEY
    assert leftovers(scratch) == []


def test_a_spilled_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = _spill(str(tmp_path), "key.pem", KEY)
    assert path is not None
    assert Path(path).read_bytes() == KEY
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    assert _spill(str(tmp_path), "none.pem", None) is None
