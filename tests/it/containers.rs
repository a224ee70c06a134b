//! The container files, checked without a Docker engine (none runs here): the compose file
//! validates with `docker-compose config -q` (Debian's `docker-compose`, which `.ci/run`
//! installs), every repository path the Dockerfile and the compose file name exists, every
//! `rolecall` command they run is one the binary has, and the image's health check works
//! against a real server started with the compose set-up's config.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rolecall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rolecall"))
}

/// `rolecall <args> --help` succeeds: the subcommand (and its flags) exist.
fn assert_command_exists(args: &[String], named_in: &str) {
    let status = rolecall()
        .args(args)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run rolecall");
    assert!(
        status.success(),
        "{named_in} runs `rolecall {}`, which the binary refuses",
        args.join(" ")
    );
}

/// The sources of each `COPY` from the build context (not `--from` a stage).
fn copy_sources(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in dockerfile.lines() {
        let Some(rest) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        if rest.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        if let Some((_, sources)) = words.split_last() {
            out.extend(sources.iter().map(|s| (*s).to_owned()));
        }
    }
    out
}

/// The JSON-array argument of an instruction line such as `CMD ["serve"]`.
fn exec_form(line: &str) -> Vec<String> {
    let start = line.find('[').expect("an exec-form array");
    serde_json::from_str(&line[start..]).expect("a JSON array of strings")
}

#[test]
fn the_dockerfile_names_only_what_exists() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile");
    let sources = copy_sources(&text);
    assert!(!sources.is_empty(), "the build copies the sources");
    for source in &sources {
        assert!(
            repo().join(source).exists(),
            "Dockerfile copies `{source}`, which is missing"
        );
    }
    // The caching step must not be a hand-written stub that goes stale as targets are added.
    assert!(
        text.contains("cargo chef cook"),
        "dependencies are cached with cargo-chef"
    );
    assert!(text.contains("USER nonroot"), "the image runs as non-root");
    // Continuation lines joined, so a multi-line HEALTHCHECK reads as one.
    let joined = text.replace("\\\n", " ");
    let health = joined
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    let entry = joined
        .lines()
        .find(|l| l.starts_with("ENTRYPOINT"))
        .map(exec_form)
        .expect("an ENTRYPOINT");
    assert_eq!(entry, ["/usr/local/bin/rolecall"]);
    let check = exec_form(&health[health.find("CMD").expect("CMD")..]);
    assert_eq!(check[0], "/usr/local/bin/rolecall");
    assert_command_exists(&check[1..], "HEALTHCHECK");
    let cmd = joined
        .lines()
        .find(|l| l.starts_with("CMD"))
        .map(exec_form)
        .expect("a CMD");
    assert_command_exists(&cmd, "CMD");
}

/// Every `volumes` entry and `command` list anywhere in the compose file (services and
/// `x-` fragments alike).
fn walk(value: &Value, volumes: &mut Vec<String>, commands: &mut Vec<Vec<String>>) {
    match value {
        Value::Mapping(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    (Some("volumes"), Value::Sequence(items)) => {
                        volumes.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)));
                    }
                    (Some("command"), Value::Sequence(items)) => commands.push(
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect(),
                    ),
                    _ => walk(v, volumes, commands),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| walk(i, volumes, commands)),
        _ => {}
    }
}

#[test]
fn the_compose_file_validates_and_names_only_what_exists() {
    let file = repo().join("docker-compose.yml");
    let text = std::fs::read_to_string(&file).expect("a docker-compose.yml");
    let doc: Value = serde_yaml::from_str(&text).expect("YAML");
    let (mut volumes, mut commands) = (Vec::new(), Vec::new());
    walk(&doc, &mut volumes, &mut commands);
    let mounted: Vec<&str> = volumes
        .iter()
        .filter_map(|v| v.split(':').next())
        .filter(|source| source.starts_with("./"))
        .collect();
    assert!(
        mounted.len() >= 2,
        "the replicas' config and nginx's are mounted: {volumes:?}"
    );
    for source in mounted {
        assert!(
            repo().join(source).exists(),
            "docker-compose.yml mounts `{source}`, which is missing"
        );
    }
    assert!(!commands.is_empty());
    for command in &commands {
        assert_command_exists(command, "docker-compose.yml");
    }
    assert!(
        repo().join("Dockerfile").exists(),
        "`build: .` needs the Dockerfile"
    );

    let output = Command::new("docker-compose")
        .args(["-f"])
        .arg(&file)
        .args(["config", "-q"])
        .env("ROLECALL_ADMIN_KEY", "compose-validation-key-0123")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run docker-compose ({e}): `apt-get install docker-compose` (.ci/run does)"
            )
        });
    assert!(
        output.status.success(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn healthcheck(listen: &str) -> bool {
    rolecall()
        .args(["healthcheck", "--listen", listen, "--timeout", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run rolecall healthcheck")
        .success()
}

#[test]
fn the_health_check_passes_for_a_ready_server_started_as_compose_does() {
    let data = std::env::temp_dir().join(format!("rolecall-containers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data).expect("a data directory");
    let port = free_port();
    // What the compose file runs: `serve --dev` with deploy/rolecall.toml, listening on every
    // address (the health check then asks on loopback).
    let server = Server(
        rolecall()
            .args(["serve", "--dev", "--config"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rolecall.toml"))
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("0.0.0.0:{port}")])
            .env_remove("ROLECALL_DATABASE_URL")
            .env("ROLECALL_ADMIN_KEY", "containers-test-admin-key-0123")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rolecall serve"),
    );
    let listen = format!("0.0.0.0:{port}");
    let started = Instant::now();
    while !healthcheck(&listen) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    // Nobody listening: unhealthy.
    assert!(!healthcheck(&format!("127.0.0.1:{}", free_port())));
    let _ = std::fs::remove_dir_all(&data);
}
