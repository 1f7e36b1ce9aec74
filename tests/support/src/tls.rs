//! A certificate authority made for one test, with the `openssl` command
//! line: a CA, a server certificate for `127.0.0.1`/`localhost` and a client
//! certificate, all signed by it. These are the commands
//! `docs/operations.md` gives operators, so the recipe there is the one the
//! TLS tests run (and no certificate crate is compiled into the tests).
//!
//! [`TestCa::rabbit_conf`] turns them into the `rabbitmq.conf` lines of a
//! TLS listener for a [`crate::RabbitNode`].

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::rabbit_node::NodeConfig;

/// The files of a test CA, in a folder of their own (removed on drop).
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a CA and a server and a client certificate signed by it
    /// (EC P-256 keys: quick to make, and both rustls and Erlang take them).
    pub fn new() -> Self {
        let ca = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        ca.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=plughost test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        ca.issue(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        ca.issue("client", "extendedKeyUsage=clientAuth\n");
        ca
    }

    /// Makes `<name>.key` and `<name>.pem` signed by the CA, with `extensions`.
    fn issue(&self, name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.path().join(&ext),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
        )
        .unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let subject = format!("/CN=plughost test {name}");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("this test makes its certificates with the openssl command line");
        assert!(
            out.status.success(),
            "openssl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate (what a client's `ca_file` names), as text for
    /// command lines and manifests.
    pub fn ca_file(&self) -> String {
        self.file("ca.pem").display().to_string()
    }

    /// The client certificate.
    pub fn client_cert(&self) -> String {
        self.file("client.pem").display().to_string()
    }

    /// The client certificate's key.
    pub fn client_key(&self) -> String {
        self.file("client.key").display().to_string()
    }

    /// The folder holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `rabbitmq.conf` lines for a TLS listener on `port` with the server
    /// certificate; with `require_client_cert`, clients without a
    /// certificate signed by this CA are refused.
    pub fn rabbit_conf(&self, port: u16, require_client_cert: bool) -> NodeConfig {
        let path = |name: &str| self.file(name).display().to_string();
        let (verify, fail) = if require_client_cert {
            ("verify_peer", "true")
        } else {
            ("verify_none", "false")
        };
        NodeConfig::default()
            .line(format!("listeners.ssl.default = 127.0.0.1:{port}"))
            .line(format!("ssl_options.cacertfile = {}", path("ca.pem")))
            .line(format!("ssl_options.certfile = {}", path("server.pem")))
            .line(format!("ssl_options.keyfile = {}", path("server.key")))
            .line(format!("ssl_options.verify = {verify}"))
            .line(format!("ssl_options.fail_if_no_peer_cert = {fail}"))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
