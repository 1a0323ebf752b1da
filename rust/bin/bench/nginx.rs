//! nginx as the second benchmark server: the standard server people put in front of
//! backends, so the figures do not depend on a server written for the bench. Provisioned
//! the way the tests provision Godot: Debian's `nginx` package and its dependencies,
//! downloaded through the host's own apt configuration and unpacked into the cache folder
//! (nothing is installed on the host), run through the unpacked root's dynamic loader.
//!
//! It answers every path with the same 1 KB JSON body as the hyper server (`return 200`,
//! no file I/O), with nginx's defaults otherwise: HTTP/1.1 keep-alive for 75 s and at most
//! 1000 requests per connection, then `Connection: close`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::godot_runner;
use crate::server::{JSON_PATH, json_body};

/// Time nginx gets to start listening, and to stop after SIGTERM.
const START_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running nginx; dropping it stops it (SIGTERM to the master, then SIGKILL).
pub struct NginxServer {
    child: Child,
    addr: SocketAddr,
    version: String,
}

impl NginxServer {
    /// Provisions nginx if needed, writes a configuration under `work`, and starts it with
    /// `workers` worker processes on a free loopback port.
    pub fn start(work: &Path, workers: usize) -> Result<NginxServer, String> {
        let root = godot_runner::provision_debian_package("nginx")?;
        let binary = root.join("usr/sbin/nginx");
        if !binary.is_file() {
            return Err(format!(
                "{} is missing: the provisioned nginx package holds no binary",
                binary.display()
            ));
        }
        let version = probe_version(&root, &binary)?;
        std::fs::create_dir_all(work.join("logs"))
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        let addr = free_port()?;
        let conf = work.join("nginx.conf");
        std::fs::write(&conf, config(work, addr, workers))
            .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let mut cmd = godot_runner::command_in_root(&root, &binary)?;
        cmd.arg("-p")
            .arg(work)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(work.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start nginx: {e}"))?;
        let mut server = NginxServer {
            child,
            addr,
            version,
        };
        server.wait_listening(work)?;
        Ok(server)
    }

    /// The full URL of the JSON endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{JSON_PATH}", self.addr)
    }

    /// e.g. "nginx/1.28.0".
    pub fn version(&self) -> &str {
        &self.version
    }

    fn wait_listening(&mut self, work: &Path) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < START_STOP_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(work.join("logs/error.log")).unwrap_or_default();
                return Err(format!("nginx exited at start ({status}): {log}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "nginx did not listen on {} within {START_STOP_TIMEOUT:?}",
            self.addr
        ))
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        // SIGTERM makes the master stop its workers; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < START_STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nginx -v` prints "nginx version: nginx/1.x.y" on stderr.
fn probe_version(root: &Path, binary: &Path) -> Result<String, String> {
    let out = godot_runner::command_in_root(root, binary)?
        .arg("-v")
        .output()
        .map_err(|e| format!("cannot run nginx -v: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .find(|w| w.starts_with("nginx/"))
        .map(str::to_string)
        .ok_or_else(|| format!("nginx -v printed no version: {text}"))
}

/// A loopback address nobody listens on right now (bound, read, released).
fn free_port() -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("cannot read a free port: {e}"))
}

/// The configuration: everything under `work`, no access log, one static JSON answer.
fn config(work: &Path, addr: SocketAddr, workers: usize) -> String {
    let dir = |name: &str| -> PathBuf { work.join(name) };
    format!(
        "daemon off;
master_process on;
worker_processes {workers};
pid {pid};
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    server {{
        listen {addr};
        location / {{
            default_type application/json;
            return 200 '{json}';
        }}
    }}
}}
",
        workers = workers.max(1),
        pid = dir("nginx.pid").display(),
        body = dir("client_body_temp").display(),
        proxy = dir("proxy_temp").display(),
        fastcgi = dir("fastcgi_temp").display(),
        uwsgi = dir("uwsgi_temp").display(),
        scgi = dir("scgi_temp").display(),
        json = json_body(),
    )
}
