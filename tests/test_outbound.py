"""The outbound policy: every class of non-public address refused unless listed; requests pinned to the
address that was checked; redirects not followed."""

import datetime
import ipaddress
import re
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaon import outbound
from kaon.outbound import Policy, Refused
from support.capture import Answer, VendorCapture

REFUSED = [
    ("169.254.169.254", "link-local or metadata"),
    ("fd00:ec2::254", "link-local or metadata"),
    ("fe80::1", "link-local or metadata"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_each_non_public_class_is_refused_by_default(address: str, kind: str) -> None:
    assert outbound.refused_class(ipaddress.ip_address(address)) == kind
    with pytest.raises(Refused, match=f"{re.escape(kind)}.*KAON_OUTBOUND_ALLOW"):
        Policy().resolve(address, 443)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert outbound.refused_class(ipaddress.ip_address(address)) is None
    assert Policy().resolve(address, 443) == address


@pytest.mark.parametrize(("listed", "address"), [("127.0.0.1", "127.0.0.1"), ("10.0.0.0/8", "10.9.8.7"),
                                                  ("169.254.169.254/32", "169.254.169.254"), ("fc00::/7", "fd00::5"),
                                                  (" 192.168.0.0/16 , ::1 ", "::1")])
def test_listed_cidrs_are_allowed(listed: str, address: str) -> None:
    assert Policy.parse(listed).resolve(address, 80) == address


def test_a_name_is_checked_against_what_it_resolves_to() -> None:
    with pytest.raises(Refused, match=r"localhost \(127\.0\.0\.1\) is a loopback address"):
        Policy().resolve("localhost", 80)
    assert Policy.parse("127.0.0.1").resolve("localhost", 80) == "127.0.0.1"
    assert Policy.parse("LocalHost").resolve("localhost", 80) == "127.0.0.1"  # a listed name, whatever it is
    with pytest.raises(Refused):
        Policy.parse("localhost").resolve("127.0.0.1", 80)  # the name is listed, not its address


def test_a_name_with_any_refused_address_is_refused() -> None:
    two = Policy(lookup=lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(Refused, match=r"10\.0\.0\.1"):
        two.resolve("mixed.example", 443)


def test_the_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(outbound.ENV)
    with pytest.raises(Refused):
        outbound.check_url("http://127.0.0.1:9/hook")
    monkeypatch.setenv(outbound.ENV, "127.0.0.0/8")
    outbound.check_url("http://127.0.0.1:9/hook")
    outbound.check_url("https://does-not-resolve.invalid/hook")  # checked again when sent


def test_a_request_connects_to_the_address_that_was_checked() -> None:
    """DNS rebinding: the name resolves to a public address when checked, to 127.0.0.1 when connecting.
    Resolving once and connecting to that address means the second answer is never used."""
    vendor = VendorCapture().start()
    try:
        port = vendor.url.rsplit(":", 1)[1]
        answers = iter([["127.0.0.1"]])
        rebinding = Policy(lookup=lambda host, p: next(answers))
        with httpx.Client() as client, pytest.raises(Refused, match="loopback"):
            outbound.request(client, "POST", f"http://rebind.example:{port}/hook", content=b"{}", rules=rebinding)
        assert vendor.requests() == []
        # Listed, the same request goes to the one address resolved, with the name as its Host.
        allowed = Policy.parse("127.0.0.1")
        allowed = Policy(allowed.networks, allowed.hosts, lookup=lambda host, p: ["127.0.0.1"])
        with httpx.Client() as client:
            answer = outbound.request(client, "POST", f"http://vendor.example:{port}/hook", content=b"{}",
                                      rules=allowed)
        assert answer.status_code == 200
        [seen] = vendor.requests()
        assert seen.headers["host"] == f"vendor.example:{port}"
    finally:
        vendor.stop()


def test_redirects_are_not_followed() -> None:
    target = VendorCapture().start()
    redirecting = VendorCapture(Answer(302, {"Location": f"{target.url}/elsewhere"}, b"")).start()
    try:
        with httpx.Client() as client:
            answer = outbound.request(client, "GET", f"{redirecting.url}/hook", rules=Policy.parse("127.0.0.1"))
        assert answer.status_code == 302
        assert target.requests() == []
    finally:
        target.stop()
        redirecting.stop()


def test_https_keeps_the_name_for_tls_while_connecting_to_the_checked_address(tmp_path: Path) -> None:
    """Pinning must not break TLS: the certificate is checked against the configured name, not the address."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vendor.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("vendor.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    vendor = VendorCapture()
    vendor._httpd.socket = served.wrap_socket(vendor._httpd.socket, server_side=True)  # a TLS vendor
    vendor.start()
    trusted = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    port = vendor.url.rsplit(":", 1)[1]
    rules = Policy(Policy.parse("127.0.0.1").networks, lookup=lambda host, p: ["127.0.0.1"])
    try:
        with httpx.Client(verify=trusted) as client:
            answer = outbound.request(client, "POST", f"https://vendor.example:{port}/hook", content=b"{}",
                                      rules=rules)
            assert answer.status_code == 200
        with httpx.Client(verify=trusted) as client, pytest.raises(httpx.ConnectError):
            # the address itself is not what the certificate names
            outbound.request(client, "POST", f"https://127.0.0.1:{port}/hook", content=b"{}", rules=rules)
        assert vendor.requests()[0].headers["host"] == f"vendor.example:{port}"
    finally:
        vendor.stop()


def test_a_url_httpx_cannot_parse_is_a_settings_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="not a valid URL") as raised:
        outbound.check_url("http://[::1/hook")
    assert not isinstance(raised.value, Refused)
