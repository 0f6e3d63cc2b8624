//! Real processes for the tests: free loopback ports, programs on PATH,
//! child processes that are killed when dropped, and waiting for HTTP
//! conditions.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The ports [`free_port`] has handed out in this test binary: tests run in
/// parallel, and two of them must never be given the same port.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port nothing listens on right now, never handed out before in
/// this test binary.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("binding an ephemeral loopback port");
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Finds a program on PATH or in /usr/bin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    from_path.or_else(|| Some(Path::new("/usr/bin").join(name)).filter(|p| p.is_file()))
}

/// Finds a program on PATH or in /usr/bin and fails the test with an
/// install hint when it is missing.
pub fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs the programs the tests run (its TEST_PACKAGES) with apt-get")
    })
}

/// The model-monitor binary cargo built for this test run.
pub fn model_monitor_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_model-monitor"))
}

/// `model-monitor ARGS` to its end: (exit code, stdout, stderr).
pub fn run_binary(args: &[String]) -> (i32, String, String) {
    let output = Command::new(model_monitor_binary())
        .args(args)
        .output()
        .expect("running model-monitor");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A child process killed (SIGKILL) and reaped when dropped. Its output goes
/// to a log file so a failing test can show it.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn start(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Process {
        Self::start_with_env(name, program, args, &[], log_dir)
    }

    /// Starts `program` with `env` added to the environment; its output goes
    /// to `<log_dir>/<name>.log`.
    pub fn start_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("creating a log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("cloning a file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));
        Process {
            child: Some(child),
            log,
        }
    }

    /// Sends SIGKILL and waits for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (e.g. "TERM") and waits up to `deadline` for the exit
    /// status; past the deadline the process is killed and `None` returned.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        deadline: Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait());
        });
        match receiver.recv_timeout(deadline) {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                None
            }
        }
    }

    /// Sends a signal (e.g. "HUP") without waiting for anything.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the process runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// The process id, while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process' peak resident set size in bytes (`VmHWM` in
    /// `/proc/<pid>/status`).
    pub fn peak_rss_bytes(&self) -> u64 {
        let pid = self.pid().expect("the process runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib * 1024
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The exit status, once the process has exited (without signalling it).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 250 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
    }
}

/// Waits until a GET of `url` answers 200: a server's `/-/ready`.
pub async fn wait_until_ok(client: &reqwest::Client, what: &str, url: &str, timeout: Duration) {
    wait_for(what, timeout, || async {
        matches!(get(client, url).await, Some((200, _))).then_some(())
    })
    .await;
}

/// An HTTP client whose requests time out after 5 s.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

/// GETs a URL and returns (status, body), or None when unreachable.
pub async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}
