//! The soak driver (`scripts/soak` starts the replicas and runs it): mixed traffic at a fixed
//! rate against every replica in turn (95% checks, 4% reads, 1% writes), for a duration.
//!
//! After each write, the next replica is asked for a check at least as new as the write
//! (`consistency.atLeast`): the time that takes is the replica's convergence lag. Every
//! `--report-every` seconds it prints requests served, errors and each replica's resident
//! memory (`/proc/<pid>/status`); at the end, the totals, check latency percentiles and the
//! convergence lag. It exits 1 if any request failed (an error is any unexpected status or a
//! transport failure), so a script can gate on it.
//!
//! ```text
//! soak --replica URL --replica URL [--pid PID ...] --key ADMIN_KEY --subjects FILE
//!      [--duration 600] [--rate 200] [--report-every 30]
//! ```
//! `FILE` holds one `principal-id scope` pair per line (from the seeded directory).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a driver: a failed set-up should stop the run

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the run measures, shared by every request task.
#[derive(Default)]
struct Tally {
    checks: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    errors: AtomicU64,
    /// Ticks skipped because too many requests were already in flight.
    saturated: AtomicU64,
    check_ns: Mutex<Vec<u64>>,
    lag_ns: Mutex<Vec<u64>>,
    first_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap();
        if first.len() < 10 {
            first.push(what);
        }
    }
}

struct Args {
    replicas: Vec<String>,
    pids: Vec<u32>,
    key: String,
    subjects: Vec<(String, String)>,
    duration: Duration,
    rate: u64,
    report_every: Duration,
}

fn args() -> Args {
    let mut a = Args {
        replicas: Vec::new(),
        pids: Vec::new(),
        key: String::new(),
        subjects: Vec::new(),
        duration: Duration::from_secs(600),
        rate: 200,
        report_every: Duration::from_secs(30),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--replica" => a.replicas.push(value),
            "--pid" => a.pids.push(value.parse().expect("a pid")),
            "--key" => a.key = value,
            "--subjects" => {
                let text = std::fs::read_to_string(&value).expect("the subjects file");
                a.subjects = text
                    .lines()
                    .filter_map(|l| {
                        let mut parts = l.split_whitespace();
                        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                    })
                    .collect();
            }
            "--duration" => a.duration = Duration::from_secs(value.parse().expect("seconds")),
            "--rate" => a.rate = value.parse().expect("requests per second"),
            "--report-every" => {
                a.report_every = Duration::from_secs(value.parse().expect("seconds"))
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.replicas.is_empty(), "--replica URL (one or more)");
    assert!(
        !a.subjects.is_empty(),
        "--subjects FILE with principal-scope lines"
    );
    assert!(a.rate > 0);
    a
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / 1e6
}

/// One check body about a seeded principal, at a resource under its assignment's scope.
fn check_body(subject: &(String, String), consistency: Option<&str>) -> Value {
    let mut body = json!({
        "subject": {"principalId": subject.0},
        "action": "microsoft.directory/applications/standard/read",
        "resource": format!("{}/soak", subject.1.trim_end_matches('/')),
    });
    if let Some(revision) = consistency {
        body["consistency"] = json!({"atLeast": revision});
    }
    body
}

#[tokio::main]
async fn main() {
    let a = Arc::new(args());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    // The last group a write created, for the next write to add a member to.
    let last_group: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));

    let started = Instant::now();
    let rss_start: Vec<u64> = a.pids.iter().map(|p| rss_mib(*p)).collect();
    let mut rss_max = rss_start.clone();
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / a.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next_report = a.report_every;
    let mut n: u64 = 0;
    while started.elapsed() < a.duration {
        ticker.tick().await;
        if started.elapsed() >= next_report {
            next_report += a.report_every;
            let rss: Vec<u64> = a.pids.iter().map(|p| rss_mib(*p)).collect();
            for (max, now) in rss_max.iter_mut().zip(&rss) {
                *max = (*max).max(*now);
            }
            println!(
                "t={:>4}s checks={} reads={} writes={} errors={} saturated={} rss_mib={:?}",
                started.elapsed().as_secs(),
                tally.checks.load(Ordering::Relaxed),
                tally.reads.load(Ordering::Relaxed),
                tally.writes.load(Ordering::Relaxed),
                tally.errors.load(Ordering::Relaxed),
                tally.saturated.load(Ordering::Relaxed),
                rss
            );
        }
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            tally.saturated.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        n += 1;
        let (a, client, tally, last_group) = (
            Arc::clone(&a),
            client.clone(),
            Arc::clone(&tally),
            Arc::clone(&last_group),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let replica = &a.replicas[(n as usize) % a.replicas.len()];
            let subject = &a.subjects[(n as usize * 7919) % a.subjects.len()];
            let kind = n % 100;
            if kind < 95 {
                let t = Instant::now();
                let r = client
                    .post(format!("{replica}/v1/check"))
                    .bearer_auth(&a.key)
                    .json(&check_body(subject, None))
                    .send()
                    .await;
                let ns = t.elapsed().as_nanos() as u64;
                match r {
                    Ok(r) if r.status() == 200 => {
                        tally.checks.fetch_add(1, Ordering::Relaxed);
                        tally.check_ns.lock().unwrap().push(ns);
                    }
                    Ok(r) => tally.error(format!("check on {replica}: {}", r.status())),
                    Err(e) => tally.error(format!("check on {replica}: {e}")),
                }
            } else if kind < 99 {
                let r = client
                    .get(format!(
                        "{replica}/v1/roleAssignments?principalId={}&limit=10",
                        subject.0
                    ))
                    .bearer_auth(&a.key)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        tally.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => tally.error(format!("read on {replica}: {}", r.status())),
                    Err(e) => tally.error(format!("read on {replica}: {e}")),
                }
            } else {
                // Writes alternate: a new group, then a member added to it.
                let group = last_group.lock().unwrap().take();
                let request = match &group {
                    None => client
                        .post(format!("{replica}/v1/groups"))
                        .json(&json!({"displayName": format!("soak {n}")})),
                    Some(id) => client
                        .post(format!("{replica}/v1/groups/{id}/members"))
                        .json(&json!({"id": subject.0, "type": "user"})),
                };
                let r = request.bearer_auth(&a.key).send().await;
                let revision = match r {
                    Ok(r) if r.status() == 201 => {
                        let revision = r
                            .headers()
                            .get("rolecall-revision")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        if group.is_none() {
                            let body: Value = r.json().await.unwrap_or_default();
                            *last_group.lock().unwrap() = body["id"].as_str().map(str::to_owned);
                        }
                        tally.writes.fetch_add(1, Ordering::Relaxed);
                        revision
                    }
                    Ok(r) => {
                        tally.error(format!("write on {replica}: {}", r.status()));
                        None
                    }
                    Err(e) => {
                        tally.error(format!("write on {replica}: {e}"));
                        None
                    }
                };
                // Convergence: how long until the next replica can answer at this revision.
                if let Some(revision) = revision {
                    let other = &a.replicas[(n as usize + 1) % a.replicas.len()];
                    let t = Instant::now();
                    let r = client
                        .post(format!("{other}/v1/check"))
                        .bearer_auth(&a.key)
                        .json(&check_body(subject, Some(&revision)))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            tally
                                .lag_ns
                                .lock()
                                .unwrap()
                                .push(t.elapsed().as_nanos() as u64);
                        }
                        Ok(r) => tally.error(format!(
                            "convergence to {revision} on {other}: {}",
                            r.status()
                        )),
                        Err(e) => tally.error(format!("convergence on {other}: {e}")),
                    }
                }
            }
        });
    }
    // Let the last requests finish.
    let _ = in_flight.acquire_many(512).await;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end: Vec<u64> = a.pids.iter().map(|p| rss_mib(*p)).collect();
    for (max, now) in rss_max.iter_mut().zip(&rss_end) {
        *max = (*max).max(*now);
    }
    let mut check_ns = std::mem::take(&mut *tally.check_ns.lock().unwrap());
    check_ns.sort_unstable();
    let mut lag_ns = std::mem::take(&mut *tally.lag_ns.lock().unwrap());
    lag_ns.sort_unstable();
    let (checks, reads, writes) = (
        tally.checks.load(Ordering::Relaxed),
        tally.reads.load(Ordering::Relaxed),
        tally.writes.load(Ordering::Relaxed),
    );
    let errors = tally.errors.load(Ordering::Relaxed);
    println!(
        "soak: {elapsed:.0} s against {} replicas at {} req/s offered",
        a.replicas.len(),
        a.rate
    );
    println!(
        "served {} ({checks} checks, {reads} reads, {writes} writes; {:.0} req/s), errors {errors}, saturated ticks {}",
        checks + reads + writes,
        (checks + reads + writes) as f64 / elapsed,
        tally.saturated.load(Ordering::Relaxed)
    );
    println!(
        "check latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&check_ns, 0.5),
        percentile(&check_ns, 0.99),
        percentile(&check_ns, 1.0)
    );
    println!(
        "convergence lag (write on one replica, check at that revision on the next): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
        percentile(&lag_ns, 0.5),
        percentile(&lag_ns, 0.99),
        percentile(&lag_ns, 1.0),
        lag_ns.len()
    );
    println!("rss MiB per replica: start {rss_start:?}, end {rss_end:?}, max {rss_max:?}");
    for e in tally.first_errors.lock().unwrap().iter() {
        println!("error: {e}");
    }
    if errors > 0 || checks == 0 {
        std::process::exit(1);
    }
}
