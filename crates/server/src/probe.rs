//! The store probe, at start-up and on demand (`draftstore doctor`). DraftStore hands clients URLs signed with a
//! credential of its own and relies on the store to honour exactly what was signed; the probe (the storage crate's
//! [`StoreProbe`]) checks each promise with throwaway keys in the draft bucket. At start-up a store that breaks a
//! critical one (a signed URL that writes what was not signed) stops the server, unless `STORE_PROBE=warn`; lesser
//! ones are warnings saying what they cost. What it found is a metric (`draftstore_store_promise`) and part of
//! `/ready`'s answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock};

use clap::Args;
use draftstore_api::StoreProbeStatus;
use draftstore_storage::probe::{Depth, Finding, Outcome, ProbePlan, ProbeReport, Promise, Severity, StoreProbe};

use crate::backend::{StorageSettings, StorageType};
use crate::error::Error;
use crate::gateway::StorageCalls;
use crate::service::ServiceSettings;
use crate::setting;

/// What the start-up probe may do.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct ProbeSettings {
    /// The store probe at start-up: `enforce` refuses to start on a store that lets a signed URL write what was not
    /// signed (a smuggled copy, unsigned metadata, a differing checksum, length or type), `warn` starts anyway with
    /// an error logged, `off` skips it (and only finds out about conditional writes, with S3_CONDITIONAL_WRITES
    /// auto). `draftstore doctor` runs it on demand.
    #[arg(long, env = "STORE_PROBE", default_value = "enforce", value_name = "enforce|warn|off")]
    #[arg(value_parser = setting::choice(PROBE_MODES))]
    pub store_probe: ProbeMode,
}

/// STORE_PROBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    Enforce,
    Warn,
    Off,
}

const PROBE_MODES: &[(&str, ProbeMode)] =
    &[("enforce", ProbeMode::Enforce), ("warn", ProbeMode::Warn), ("off", ProbeMode::Off)];

/// Why the start-up probe did not let the server trust the store.
#[derive(Debug)]
pub enum ProbeError {
    /// The store could not be reached: try again later.
    Unreachable(Error),
    /// The store breaks a critical promise, or could not be probed (STORE_PROBE=enforce): the message says which
    /// and the way out.
    Refused(String),
}

/// The start-up probe of one store, and what it found, shared with `/ready`.
#[derive(Debug)]
pub struct StartupProbe {
    probe: Arc<dyn StoreProbe>,
    mode: ProbeMode,
    /// With STORE_PROBE=off, whether the backend still needs to find out about conditional writes.
    conditional_writes: bool,
    service: ServiceSettings,
    calls: StorageCalls,
    status: Arc<ProbeStatus>,
}

impl StartupProbe {
    /// The probe of the store `storage` names, for the buckets and rules of `service`.
    pub fn new(
        probe: Arc<dyn StoreProbe>,
        storage: &StorageSettings,
        service: &ServiceSettings,
        mode: ProbeMode,
        calls: StorageCalls,
    ) -> Self {
        Self {
            probe,
            mode,
            conditional_writes: storage.kind != StorageType::Local && storage.s3_conditional_writes.is_none(),
            service: service.clone(),
            calls,
            status: Arc::new(ProbeStatus::new(mode)),
        }
    }

    /// What the probe found, for `/ready`.
    pub fn status(&self) -> Arc<ProbeStatus> {
        Arc::clone(&self.status)
    }

    /// Probes the store (the buckets exist by now), logs and records what it found. `Err` when the server must not
    /// trust the store, or could not reach it.
    pub async fn run(&self) -> Result<(), ProbeError> {
        let depth = match (self.mode, self.conditional_writes) {
            (ProbeMode::Off, false) => {
                self.status.set(State::Off);
                return Ok(());
            }
            (ProbeMode::Off, true) => Depth::ConditionalWrites,
            (ProbeMode::Enforce | ProbeMode::Warn, _) => Depth::Startup,
        };
        let report = match probe(self.probe.as_ref(), &self.service, depth, self.calls).await {
            Ok(report) => report,
            Err(e @ (Error::StorageUnavailable { .. } | Error::StorageTimeout { .. })) => {
                return Err(ProbeError::Unreachable(e));
            }
            Err(e) if self.mode == ProbeMode::Warn => {
                tracing::error!(error = %e.chain(), "STORE_PROBE=warn: the store probe could not run; starting anyway");
                self.status.set(State::Failed(e.to_string()));
                return Ok(());
            }
            Err(e) => {
                self.status.set(State::Failed(e.to_string()));
                return Err(ProbeError::Refused(format!(
                    "the store probe could not run ({}); STORE_PROBE=warn starts without it",
                    e.chain()
                )));
            }
        };
        record_metrics(&report);
        if depth == Depth::ConditionalWrites {
            log_warnings(&report);
            self.status.set(State::Off);
            return Ok(());
        }
        let failures: Vec<&Finding> = report.failures().collect();
        let verdict = match (failures.is_empty(), self.mode) {
            (true, _) if report.all_hold() => Verdict::Passed,
            (true, _) => Verdict::Warned,
            (false, ProbeMode::Warn) => Verdict::Accepted,
            (false, _) => Verdict::Refused,
        };
        log_warnings(&report);
        for failure in &failures {
            tracing::error!(
                promise = failure.promise.name(),
                found = %failure.detail,
                consequence = failure.promise.consequence(),
                fix = failure.promise.fix(),
                "the store breaks a promise signed URLs rely on: {}",
                failure.promise.statement()
            );
        }
        tracing::info!(
            checked = report.findings.len(),
            broken = failures.len() + report.warnings().count(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            verdict = verdict.name(),
            "store probe"
        );
        let refusal = (verdict == Verdict::Refused).then(|| refusal(&failures));
        self.status.set(State::Done { verdict, report });
        match refusal {
            Some(message) => Err(ProbeError::Refused(message)),
            None => Ok(()),
        }
    }
}

/// Runs the probe at `depth`, bounded by STORAGE_TIMEOUT as a whole.
async fn probe(
    probe: &dyn StoreProbe,
    service: &ServiceSettings,
    depth: Depth,
    calls: StorageCalls,
) -> crate::error::Result<ProbeReport> {
    let buckets = &service.buckets;
    let plan = ProbePlan {
        draft: &buckets.draft,
        main: &buckets.main,
        depth,
        cors_origins: &service.cors_allowed_origins,
        lifecycle_days: service.lifecycle_days(),
    };
    calls.call("probe the store", probe.probe(&plan)).await
}

fn log_warnings(report: &ProbeReport) {
    for warning in report.warnings() {
        tracing::warn!(
            promise = warning.promise.name(),
            found = %warning.detail,
            consequence = warning.promise.consequence(),
            fix = warning.promise.fix(),
            "the store breaks a promise: {}",
            warning.promise.statement()
        );
    }
}

/// The message a refusal to start carries: each broken promise, what was found, what it costs, the way out.
fn refusal(failures: &[&Finding]) -> String {
    let mut message = format!(
        "the store breaks {} promise{} DraftStore relies on to hand out signed URLs",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for failure in failures {
        let promise = failure.promise;
        let _ = write!(
            message,
            "; {promise} ({}): {}, so {}; way out: {}",
            promise.statement(),
            failure.detail,
            promise.consequence(),
            promise.fix()
        );
    }
    message.push_str(". STORE_PROBE=warn starts anyway, accepting the risk; `draftstore doctor` shows every check");
    message
}

/// Every promise's outcome as a gauge: 1 for the one found, 0 for the others; and how long the probe took.
fn record_metrics(report: &ProbeReport) {
    const OUTCOMES: [Outcome; 5] =
        [Outcome::Held, Outcome::Broken, Outcome::Neutralised, Outcome::NotApplicable, Outcome::Unknown];
    for finding in &report.findings {
        for outcome in OUTCOMES {
            let value = if outcome == finding.outcome { 1.0 } else { 0.0 };
            metrics::gauge!(
                "draftstore_store_promise",
                "promise" => finding.promise.name(),
                "outcome" => outcome.name()
            )
            .set(value);
        }
    }
    metrics::gauge!("draftstore_store_probe_duration_seconds").set(report.elapsed.as_secs_f64());
}

/// What a start-up probe concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Passed,
    Warned,
    Accepted,
    Refused,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Warned => "warned",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Pending,
    Off,
    Failed(String),
    Done { verdict: Verdict, report: ProbeReport },
}

/// What the start-up probe found, as `/ready` reports it.
#[derive(Debug)]
pub struct ProbeStatus {
    mode: ProbeMode,
    state: RwLock<State>,
}

impl ProbeStatus {
    fn new(mode: ProbeMode) -> Self {
        Self { mode, state: RwLock::new(State::Pending) }
    }

    fn set(&self, state: State) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// The probe's verdict and each promise's outcome.
    pub fn summary(&self) -> StoreProbeStatus {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let (probe, promises) = match &*state {
            State::Pending => ("pending", BTreeMap::new()),
            State::Off => ("off", BTreeMap::new()),
            State::Failed(_) => ("failed", BTreeMap::new()),
            State::Done { verdict, report } => (
                verdict.name(),
                report.findings.iter().map(|f| (f.promise.name().to_owned(), f.outcome.name().to_owned())).collect(),
            ),
        };
        StoreProbeStatus { probe: probe.to_owned(), promises }
    }

    /// Why the server is not ready with STORE_PROBE=enforce: the probe has not passed yet (the store was
    /// unreachable at start-up), could not run, or found a critical promise broken.
    pub fn unready(&self) -> Option<String> {
        if self.mode != ProbeMode::Enforce {
            return None;
        }
        match &*self.state.read().unwrap_or_else(PoisonError::into_inner) {
            State::Pending => Some("the store probe has not run yet".to_owned()),
            State::Failed(e) => Some(format!("the store probe could not run: {e}")),
            State::Done { verdict: Verdict::Refused, report } => {
                let broken: Vec<_> = report.failures().map(|f| f.promise.name()).collect();
                Some(format!("the store breaks {}", broken.join(", ")))
            }
            State::Off | State::Done { .. } => None,
        }
    }
}

/// `draftstore doctor`: the probe on demand, every check, as a table or JSON, of the store `storage` names, opened
/// by the caller (`opened`, or why it could not be). Exit 0 when every promise holds, 1 otherwise or when the store
/// cannot be probed.
pub async fn doctor(
    opened: Result<Arc<dyn StoreProbe>, &dyn std::error::Error>,
    storage: &StorageSettings,
    service: &ServiceSettings,
    calls: StorageCalls,
    json: bool,
) -> ExitCode {
    let store = match opened {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {}", chain(e));
            return ExitCode::FAILURE;
        }
    };
    let report = match probe(store.as_ref(), service, Depth::Doctor, calls).await {
        Ok(report) => report,
        Err(e) => {
            let hint = match e {
                Error::BucketNotFound(_) => "; `draftstore serve` creates the buckets at its first start",
                _ => "",
            };
            eprintln!("error: the store could not be probed: {}{hint}", e.chain());
            return ExitCode::FAILURE;
        }
    };
    let store = describe_store(storage, service);
    if json {
        println!("{}", serde_json::to_string_pretty(&json_report(&store, &report)).expect("JSON serializes"));
    } else {
        print!("{}", table(&store, &report));
    }
    if report.all_hold() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

/// `s3 at http://…, buckets main and main-draft`.
fn describe_store(storage: &StorageSettings, service: &ServiceSettings) -> String {
    let at = match storage.kind {
        StorageType::Local => format!("local in {}", storage.data_dir.display()),
        StorageType::S3 => match &storage.aws.aws_endpoint_url {
            Some(endpoint) => format!("s3 at {endpoint}"),
            None => format!("s3 (AWS, {})", storage.aws.aws_region),
        },
        StorageType::Minio => format!("minio at {}", storage.minio.minio_endpoint),
    };
    format!("{at}, buckets {} and {}", service.buckets.main, service.buckets.draft)
}

fn severity(promise: Promise) -> &'static str {
    match promise.severity() {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
    }
}

/// The report for people: one row per promise (promise, result, what was found), and under each that does not hold
/// what it costs and the way out.
pub fn table(store: &str, report: &ProbeReport) -> String {
    let mut out = format!("draftstore doctor: {store} ({} ms)\n\n", report.elapsed.as_millis());
    let width = Promise::ALL.iter().map(|p| p.name().len()).max().unwrap_or(0);
    let _ = writeln!(out, "{:width$}  {:14}  FOUND", "PROMISE", "RESULT");
    for finding in &report.findings {
        let result = match finding.outcome {
            Outcome::Broken if finding.promise.severity() == Severity::Critical => "BROKEN".to_owned(),
            outcome => outcome.name().to_owned(),
        };
        let _ = writeln!(out, "{:width$}  {result:14}  {}", finding.promise.name(), finding.detail);
        if !finding.outcome.is_safe() {
            let indent = width + 18;
            let _ = writeln!(out, "{:indent$}promise: {}", "", finding.promise.statement());
            let _ = writeln!(out, "{:indent$}consequence: {}", "", finding.promise.consequence());
            let _ = writeln!(out, "{:indent$}fix: {}", "", finding.promise.fix());
        }
    }
    let failing: Vec<_> = report.findings.iter().filter(|f| !f.outcome.is_safe()).map(|f| f.promise.name()).collect();
    match failing.is_empty() {
        true => {
            let _ = writeln!(out, "\nevery promise holds ({} checked)", report.findings.len());
        }
        false => {
            let (count, checked, names) = (failing.len(), report.findings.len(), failing.join(", "));
            let _ = writeln!(out, "\n{count} of {checked} promises do not hold: {names}");
        }
    }
    out
}

/// The report for scripts.
pub fn json_report(store: &str, report: &ProbeReport) -> serde_json::Value {
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "promise": f.promise.name(),
                "statement": f.promise.statement(),
                "severity": severity(f.promise),
                "result": f.outcome.name(),
                "found": f.detail,
                "consequence": f.promise.consequence(),
                "fix": f.promise.fix(),
            })
        })
        .collect();
    serde_json::json!({
        "store": store,
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "all_hold": report.all_hold(),
        "findings": findings,
    })
}
