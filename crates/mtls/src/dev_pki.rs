use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{MtlsError, ServiceIdentity, TlsFiles};

/// The services the dev PKI issues certificates for. `admin` is the operator's identity.
pub const DEV_SERVICES: &[&str] = &["token-stash", "session-jwt", "login", "audit", "admin"];

/// How long dev certificates are valid for.
const DEV_CERT_LIFETIME: Duration = Duration::days(365);
/// A dev certificate closer than this to its expiry is issued again.
const RENEW_BEFORE: Duration = Duration::days(7);

/// A certificate and its private key, both PEM encoded.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    // The key is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").finish_non_exhaustive()
    }
}

/// A certificate authority that issues Tessera service certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new CA with a fresh ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<Self, MtlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        name.push(DnType::OrganizationName, "Tessera");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + DEV_CERT_LIFETIME * 5;
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert_pem,
            key_pem,
        })
    }

    /// A CA loaded from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, MtlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(DevCa {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM: what every peer trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `identity`, valid for a year from an hour ago.
    pub fn issue(&self, identity: &ServiceIdentity) -> Result<IssuedCertificate, MtlsError> {
        let now = OffsetDateTime::now_utc();
        self.issue_valid_between(identity, now - Duration::hours(1), now + DEV_CERT_LIFETIME)
    }

    /// Issues a year's certificate for `identity` that also carries `dns_names`, as a CA
    /// outside Tessera's control might: for showing that such names buy nothing.
    pub fn issue_with_dns_names(
        &self,
        identity: &ServiceIdentity,
        dns_names: &[&str],
    ) -> Result<IssuedCertificate, MtlsError> {
        let now = OffsetDateTime::now_utc();
        self.issue_inner(
            identity,
            dns_names,
            now - Duration::hours(1),
            now + DEV_CERT_LIFETIME,
        )
    }

    /// Issues a certificate for `identity` valid between the two times; usable for both
    /// serving and calling. Tessera's clients judge a server by its SPIFFE URI alone; the
    /// service name is also a DNS name for outside gRPC clients that check one (with a
    /// target-name override). No `localhost` or loopback address: a name every service
    /// shared would let any of them answer for another.
    pub fn issue_valid_between(
        &self,
        identity: &ServiceIdentity,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCertificate, MtlsError> {
        self.issue_inner(identity, &[], not_before, not_after)
    }

    /// Issues a year's web server certificate for `host`: its DNS name only, for serving
    /// only. What a site's `https://` front presents in tests and development, from a
    /// CA of its own (the web's PKI is not Tessera's internal one).
    pub fn issue_web_server(&self, host: &str) -> Result<IssuedCertificate, MtlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.subject_alt_names = vec![SanType::DnsName(host.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + DEV_CERT_LIFETIME;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn issue_inner(
        &self,
        identity: &ServiceIdentity,
        extra_dns_names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCertificate, MtlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, identity.name());
        name.push(DnType::OrganizationName, "Tessera");
        params.distinguished_name = name;
        params.subject_alt_names = vec![
            SanType::URI(identity.uri().try_into()?),
            SanType::DnsName(identity.name().try_into()?),
        ];
        for name in extra_dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName((*name).try_into()?));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A development PKI on disk: a CA and one certificate per Tessera service, created on
/// first use and renewed when near expiry. Never use it in production: its CA key sits next
/// to the certificates it signs.
#[derive(Debug, Clone)]
pub struct DevPki {
    dir: PathBuf,
}

impl DevPki {
    /// Makes sure `dir` holds the dev CA and a valid certificate for every service in
    /// [`DEV_SERVICES`], creating what is missing or about to expire.
    pub fn ensure(dir: &Path) -> Result<Self, MtlsError> {
        fs::create_dir_all(dir).map_err(|source| MtlsError::WriteFile {
            path: dir.to_owned(),
            source,
        })?;
        let ca_cert_path = dir.join("ca.pem");
        let ca_key_path = dir.join("ca.key");
        let ca = if ca_cert_path.exists() && ca_key_path.exists() {
            DevCa::from_pem(&read(&ca_cert_path)?, &read(&ca_key_path)?)?
        } else {
            let ca = DevCa::generate("Tessera dev CA")?;
            write(&ca_cert_path, ca.cert_pem(), false)?;
            write(&ca_key_path, &ca.key_pem, true)?;
            // Certificates signed by an earlier CA no longer chain: issue them again.
            for service in DEV_SERVICES {
                let _ = fs::remove_file(dir.join(format!("{service}.pem")));
            }
            ca
        };
        let pki = DevPki {
            dir: dir.to_owned(),
        };
        for service in DEV_SERVICES {
            let identity = ServiceIdentity::parse(service)?;
            let files = pki.files_for(&identity);
            if needs_issuing(&files.cert_file)? {
                let issued = ca.issue(&identity)?;
                write(&files.cert_file, &issued.cert_pem, false)?;
                write(&files.key_file, &issued.key_pem, true)?;
                tracing::info!(service, path = %files.cert_file.display(), "issued dev certificate");
            }
        }
        Ok(pki)
    }

    /// The directory the PKI lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files a service with `identity` uses.
    pub fn files_for(&self, identity: &ServiceIdentity) -> TlsFiles {
        TlsFiles {
            ca_file: self.dir.join("ca.pem"),
            cert_file: self.dir.join(format!("{}.pem", identity.name())),
            key_file: self.dir.join(format!("{}.key", identity.name())),
        }
    }
}

fn needs_issuing(cert_path: &Path) -> Result<bool, MtlsError> {
    if !cert_path.exists() {
        return Ok(true);
    }
    let pem_text = read(cert_path)?;
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()) else {
        return Ok(true);
    };
    let Ok((_, cert)) = X509Certificate::from_der(&pem.contents) else {
        return Ok(true);
    };
    let renew_at = OffsetDateTime::now_utc() + RENEW_BEFORE;
    Ok(cert.validity().not_after.to_datetime() < renew_at || carries_shared_names(&cert))
}

/// Whether a certificate names `localhost` or an IP address: names every service on a
/// host would share. Dev certificates issued before they were dropped are issued again.
fn carries_shared_names(cert: &X509Certificate<'_>) -> bool {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|name| match name {
        GeneralName::DNSName(dns) => dns.eq_ignore_ascii_case("localhost"),
        GeneralName::IPAddress(_) => true,
        _ => false,
    })
}

fn read(path: &Path) -> Result<String, MtlsError> {
    fs::read_to_string(path).map_err(|source| MtlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), MtlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let err = |source| MtlsError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::identity_of_certificate;

    #[test]
    fn ensure_creates_then_reuses_the_dev_pki() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = DevPki::ensure(dir.path()).expect("first ensure");
        let stash = ServiceIdentity::parse("token-stash").expect("name");
        let first = read(&pki.files_for(&stash).cert_file).expect("cert written");
        DevPki::ensure(dir.path()).expect("second ensure");
        let second = read(&pki.files_for(&stash).cert_file).expect("cert kept");
        assert_eq!(first, second, "a valid certificate must not be reissued");
    }

    #[test]
    fn dev_certificates_name_their_service_and_no_name_another_service_could_share() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = DevPki::ensure(dir.path()).expect("ensure");
        for service in DEV_SERVICES {
            let identity = ServiceIdentity::parse(service).expect("name");
            let text = read(&pki.files_for(&identity).cert_file).expect("cert");
            let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).expect("pem");
            let (_, cert) = X509Certificate::from_der(&pem.contents).expect("der");
            assert!(
                !carries_shared_names(&cert),
                "{service}'s certificate names localhost or an address"
            );
        }
    }

    #[test]
    fn a_dev_certificate_naming_localhost_is_issued_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = DevPki::ensure(dir.path()).expect("ensure");
        let login = ServiceIdentity::parse("login").expect("name");
        let files = pki.files_for(&login);
        let ca = DevCa::from_pem(
            &read(&dir.path().join("ca.pem")).expect("ca"),
            &read(&dir.path().join("ca.key")).expect("ca key"),
        )
        .expect("ca");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![
            SanType::URI(login.uri().try_into().expect("uri")),
            SanType::DnsName("localhost".try_into().expect("dns")),
        ];
        let old = params.signed_by(&key, &ca.issuer).expect("signed");
        write(&files.cert_file, &old.pem(), false).expect("write");
        assert!(needs_issuing(&files.cert_file).expect("judged"));
        DevPki::ensure(dir.path()).expect("ensure again");
        assert!(!needs_issuing(&files.cert_file).expect("judged"));
    }

    #[test]
    fn issued_certificates_carry_the_spiffe_identity() {
        let ca = DevCa::generate("test CA").expect("ca");
        let login = ServiceIdentity::parse("login").expect("name");
        let issued = ca.issue(&login).expect("issued");
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).expect("pem");
        assert_eq!(
            identity_of_certificate(&pem.contents).expect("identity"),
            login
        );
    }
}
