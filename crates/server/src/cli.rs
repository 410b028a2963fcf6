//! The client commands of the `draftstore` binary: `upload`, `download`, `confirm`, `discard`, `ls`, and for confirmed
//! objects `objects`, `stat`, `delete`. They call a
//! DraftStore server through [`draftstore_client`]; progress bars are drawn only on a terminal, and every failure
//! names the file or object and carries the server's message.
//!
//! Exit codes: 0 when everything succeeded, 1 when anything failed (after trying every file), 2 for a usage error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use draftstore_api::{self as api, Stage};
use draftstore_client::transfer::{self, Destination, DownloadOptions, Progress, UploadOptions};
use draftstore_client::{Client, Error};
use futures_util::StreamExt;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to reach the server; shared by every client command.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Base URL of the DraftStore server.
    #[arg(long, env = "DRAFTSTORE_URL", default_value = "http://localhost:8080", value_name = "URL")]
    pub url: String,
    /// Bearer token: an API key (AUTH_MODE=api-key) or a JWT (AUTH_MODE=jwt).
    #[arg(
        long,
        env = "DRAFTSTORE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = crate::setting::secret()
    )]
    pub token: Option<secrecy::SecretString>,
    /// Print errors only: no progress, no per-file lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `draftstore upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Files to upload; directories too, with --recursive.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Name of the draft (one file only) [default: the file's name, after --prefix].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Put before every name, for example `photos/`.
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub prefix: String,
    /// Media type of every file [default: guessed from each file's name].
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Confirm each draft into the main bucket once uploaded.
    #[arg(long)]
    pub confirm: bool,
    /// With --confirm: replace a confirmed object of the same name (refused otherwise).
    #[arg(long, requires = "confirm")]
    pub overwrite: bool,
    /// Upload the files under each directory given, named by their path below it.
    #[arg(long, short)]
    pub recursive: bool,
    /// Transfers in flight at once: parts of a large file, or small files.
    #[arg(long, default_value_t = transfer::DEFAULT_PARALLEL, value_parser = parse_parallel, value_name = "N")]
    pub parallel: usize,
    /// Files larger than this go in parallel parts (bytes; K, M, G, KiB, MiB, GiB suffixes).
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub multipart_threshold: u64,
    /// Part size to ask for [default: the server's MULTIPART_PART_SIZE].
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub part_size: Option<u64>,
    /// Where interrupted uploads are recorded so that running the same command again resumes them
    /// [default: $XDG_STATE_HOME/draftstore, else ~/.local/state/draftstore].
    #[arg(long, env = "DRAFTSTORE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `draftstore download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Name of the object.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// File to write, `-` for standard output [default: the name's last segment, in the current folder; with
    /// --variant, the variant's name and extension in place of its extension, as in photo.thumb.webp].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which bucket to read [default: the draft when one exists, else the confirmed object].
    #[arg(long, value_name = "draft|main")]
    pub stage: Option<Stage>,
    /// One of a confirmed image's variants (IMAGE_VARIANTS), for example `thumb`, instead of the object itself;
    /// `draftstore stat NAME` lists them.
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
}

/// `draftstore confirm`.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Drafts to confirm.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Replace a confirmed object of the same name (refused otherwise).
    #[arg(long)]
    pub overwrite: bool,
    /// The confirmed object's name (one draft only) [default: the draft's own].
    #[arg(long = "as", value_name = "FINAL")]
    pub final_name: Option<String>,
    /// Metadata stored with each confirmed object; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub metadata: Vec<(String, String)>,
}

/// `draftstore stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Confirmed objects to describe, as JSON; for an image, `image` gives its size as shown, its placeholder
    /// (ThumbHash, base64) and its variants.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `draftstore delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Confirmed objects to delete.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `key=value`.
fn parse_meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))
}

/// `draftstore discard`.
#[derive(Debug, Args)]
pub struct DiscardArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Drafts to discard.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `draftstore ls` (drafts) and `draftstore objects` (confirmed objects).
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only names that start with this.
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// 1 to 64 transfers at once.
fn parse_parallel(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("{text:?}: expected a number from 1 to 64")),
    }
}

/// `16MiB`, `5M`, `1048576`: a size in bytes with an optional binary (KiB) or decimal (K) suffix.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size such as 16MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G, KiB, MiB or GiB)")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("{text:?} is too large"))
}

/// Where the lines of a command go: above the progress bars on a terminal, plain lines otherwise.
#[derive(Debug, Clone)]
struct Output {
    bars: Option<MultiProgress>,
    quiet: bool,
    /// Standard output carries data (`download -o -`): lines go to standard error.
    data_on_stdout: bool,
}

impl Output {
    fn new(args: &ClientArgs, data_on_stdout: bool) -> Self {
        let bars = (!args.quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { bars, quiet: args.quiet, data_on_stdout }
    }

    /// A line saying something succeeded.
    fn done(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some(bars) => bars.suspend(|| self.print(line)),
            None => self.print(line),
        }
    }

    fn print(&self, line: &str) {
        if self.data_on_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// Something the user should know, on standard error.
    fn notice(&self, subject: &str, message: &str) {
        if self.quiet {
            return;
        }
        self.eprint(&format!("{subject}: {message}"));
    }

    /// A failure, on standard error, always.
    fn error(&self, subject: &str, error: &Error) {
        self.eprint(&format!("error: {subject}: {}", describe(error)));
    }

    fn eprint(&self, line: &str) {
        match &self.bars {
            Some(bars) => bars.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn bar(&self, total: u64, prefix: &str) -> ProgressBar {
        let Some(bars) = &self.bars else { return ProgressBar::hidden() };
        let style = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bars.add(ProgressBar::new(total).with_style(style).with_prefix(prefix.to_owned()))
    }
}

/// The error as the user reads it: the server's message and its code, or what went wrong on the way.
fn describe(error: &Error) -> String {
    match error {
        Error::Api { code, message, .. } => format!("{message} ({code})"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let line = cause.to_string();
                if !text.contains(&line) {
                    text.push_str(": ");
                    text.push_str(&line);
                }
                source = cause.source();
            }
            text
        }
    }
}

fn connect(args: &ClientArgs) -> Result<Client, ExitCode> {
    let token = args.token.as_ref().map(|token| secrecy::ExposeSecret::expose_secret(token).to_owned());
    Client::new(&args.url, token).map_err(|e| {
        eprintln!("error: {}", describe(&e));
        ExitCode::from(2)
    })
}

fn exit(failures: usize) -> ExitCode {
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// A file to upload and the name it gets.
#[derive(Debug)]
struct Job {
    path: PathBuf,
    name: String,
    size: u64,
}

/// The files to upload and their names, and the arguments that cannot be read (each a failure, the others still
/// go); a usage error is returned as the message to print.
fn plan_uploads(args: &UploadArgs) -> Result<(Vec<Job>, Vec<String>), String> {
    if args.name.is_some() && (args.files.len() != 1 || args.recursive) {
        return Err("--name names one file: give exactly one FILE and no --recursive".to_owned());
    }
    let mut jobs = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.files {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(e) => {
                unreadable.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if metadata.is_dir() {
            if !args.recursive {
                return Err(format!("{} is a directory: add --recursive to upload the files under it", path.display()));
            }
            let mut files = Vec::new();
            walk(path, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
            for file in files {
                let relative = file.strip_prefix(path).unwrap_or(&file);
                let segments: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect();
                let size = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?.len();
                jobs.push(Job { name: format!("{}{}", args.prefix, segments.join("/")), path: file, size });
            }
        } else {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{}: not a file name", path.display()))?;
            let name = args.name.clone().unwrap_or(file_name);
            jobs.push(Job { name: format!("{}{name}", args.prefix), path: path.clone(), size: metadata.len() });
        }
    }
    Ok((jobs, unreadable))
}

/// The files under `dir`, in name order; symbolic links to directories are not followed (no cycles).
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), files)?;
        } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
            files.push(entry.path());
        }
    }
    Ok(())
}

fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
    })?;
    Some(base.join("draftstore"))
}

/// Progress of one file: its bar, the total bar, and notices named by the file.
struct FileProgress {
    file: ProgressBar,
    total: ProgressBar,
    output: Output,
    subject: String,
}

impl Progress for FileProgress {
    fn start(&self, total: u64) {
        self.file.set_length(total);
    }

    fn advance(&self, bytes: u64) {
        self.file.inc(bytes);
        self.total.inc(bytes);
    }

    fn rewind(&self, bytes: u64) {
        self.file.dec(bytes);
        self.total.dec(bytes);
    }

    fn resumed(&self, bytes: u64) {
        self.advance(bytes);
    }

    fn notice(&self, message: &str) {
        self.output.notice(&self.subject, message);
    }
}

/// `draftstore upload`: every file, `--parallel` at a time; exit 1 if any failed.
pub async fn upload(args: UploadArgs) -> ExitCode {
    let (jobs, unreadable) = match plan_uploads(&args) {
        Ok(planned) => planned,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let client = match connect(&args.client) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let output = Output::new(&args.client, false);
    for problem in &unreadable {
        eprintln!("error: {problem}");
    }
    let total = output.bar(jobs.iter().map(|j| j.size).sum(), "total");
    let state_dir = args.state_dir.clone().or_else(default_state_dir);
    // Small files go `--parallel` at a time; large ones one after another, each with `--parallel` parts in flight,
    // so that no more than `--parallel` transfers (and their buffers) are ever open.
    let (small, large): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.size <= args.multipart_threshold);
    let mut results = Vec::new();
    for (group, width) in [(small, args.parallel), (large, 1)] {
        results.extend(upload_group(group, width, &client, &output, &total, &args, state_dir.as_ref()).await);
    }
    total.finish_and_clear();
    exit(unreadable.len() + results.iter().filter(|ok| !**ok).count())
}

/// Uploads `jobs`, `width` at a time; whether each succeeded.
async fn upload_group(
    jobs: Vec<Job>,
    width: usize,
    client: &Client,
    output: &Output,
    total: &ProgressBar,
    args: &UploadArgs,
    state_dir: Option<&PathBuf>,
) -> Vec<bool> {
    futures_util::stream::iter(jobs)
        .map(|job| async move {
            let subject = job.path.display().to_string();
            let content_type = args
                .content_type
                .clone()
                .unwrap_or_else(|| mime_guess::from_path(&job.path).first_or_octet_stream().essence_str().to_owned());
            let mut options = UploadOptions::new(job.name.clone(), content_type);
            options.multipart_threshold = args.multipart_threshold;
            options.part_size = args.part_size;
            options.parallel = args.parallel;
            options.resume_dir = state_dir.map(|dir| dir.join("uploads"));
            let progress = FileProgress {
                file: output.bar(job.size, &job.name),
                total: total.clone(),
                output: output.clone(),
                subject: subject.clone(),
            };
            let result = upload_one(client, &job, &options, args, &progress, output).await;
            progress.file.finish_and_clear();
            if let Err(error) = &result {
                output.error(&subject, error);
            }
            result.is_ok()
        })
        .buffer_unordered(width)
        .collect::<Vec<bool>>()
        .await
}

async fn upload_one(
    client: &Client,
    job: &Job,
    options: &UploadOptions,
    args: &UploadArgs,
    progress: &FileProgress,
    output: &Output,
) -> Result<(), Error> {
    let report = transfer::upload_file(client, &job.path, options, progress).await?;
    let mut line = format!("uploaded {} ({})", report.object_name, HumanBytes(report.size));
    if report.parts > 0 {
        line.push_str(&format!(" in {} parts", report.parts));
    }
    if report.parts_resumed > 0 {
        line.push_str(&format!(", {} of them already stored by an earlier run", report.parts_resumed));
    }
    output.done(&line);
    if args.confirm {
        let request = api::ConfirmUploadRequest {
            object_name: report.object_name.clone(),
            overwrite: Some(args.overwrite),
            ..Default::default()
        };
        let confirmed = client.confirm_upload(&request).await?;
        output.done(&confirmed_line(&confirmed));
    }
    Ok(())
}

/// `draftstore download`.
pub async fn download(args: DownloadArgs) -> ExitCode {
    let client = match connect(&args.client) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let destination = match &args.output {
        Some(path) if path.as_os_str() == "-" => Destination::Stdout,
        Some(path) => Destination::File(path.clone()),
        None => match args.name.rsplit('/').next().filter(|s| !s.is_empty() && *s != "." && *s != "..") {
            Some(last) => match &args.variant {
                Some(variant) => Destination::File(variant_file(&client, &args.name, last, variant).await),
                None => Destination::File(PathBuf::from(last)),
            },
            None => {
                eprintln!("error: {}: cannot name a file after it; give -o FILE", args.name);
                return ExitCode::from(2);
            }
        },
    };
    let output = Output::new(&args.client, matches!(destination, Destination::Stdout));
    let progress = FileProgress {
        file: output.bar(0, &args.name),
        total: ProgressBar::hidden(),
        output: output.clone(),
        subject: args.name.clone(),
    };
    let options = DownloadOptions { stage: args.stage, variant: args.variant.clone() };
    match transfer::download(&client, &args.name, &options, &destination, &progress).await {
        Ok(report) => {
            progress.file.finish_and_clear();
            let target = match &destination {
                Destination::File(path) => path.display().to_string(),
                Destination::Stdout => "standard output".to_owned(),
            };
            let what = match &report.variant {
                Some(variant) => format!("variant {variant} of {}", report.object_name),
                None => report.object_name,
            };
            output.done(&format!("downloaded {what} ({}, {}) to {target}", HumanBytes(report.size), report.stage));
            ExitCode::SUCCESS
        }
        Err(error) => {
            progress.file.finish_and_clear();
            output.error(&args.name, &error);
            ExitCode::FAILURE
        }
    }
}

/// The file a variant is written to without `-o`: the object's last segment with the variant's name and extension
/// in place of its extension (`photo.png`, `thumb` as WebP: `photo.thumb.webp`). The extension comes from the
/// object's description; when that cannot be read the variant's name alone is added, and the download that
/// follows reports why.
async fn variant_file(client: &Client, name: &str, last: &str, variant: &str) -> PathBuf {
    let stem = Path::new(last).file_stem().map_or_else(|| last.to_owned(), |s| s.to_string_lossy().into_owned());
    let described = client.stat_object(&api::ObjectRequest { object_name: name.to_owned() }).await.ok();
    let made = described.and_then(|o| o.image).and_then(|i| i.variants.into_iter().find(|v| v.name == variant));
    let extension = made.and_then(|v| match v.content_type.as_str() {
        "image/webp" => Some("webp"),
        "image/jpeg" => Some("jpg"),
        "image/png" => Some("png"),
        _ => None,
    });
    PathBuf::from(match extension {
        Some(extension) => format!("{stem}.{variant}.{extension}"),
        None => format!("{stem}.{variant}"),
    })
}

/// A confirm's line: where the object went and, for an image, what confirm made of it.
fn confirmed_line(confirmed: &api::ConfirmUploadResponse) -> String {
    let mut line = format!("confirmed {} to {}", confirmed.object_name, confirmed.final_location);
    if let Some(image) = &confirmed.image {
        line.push_str(&format!(", image {}x{}", image.width, image.height));
        let variants: Vec<_> = image
            .variants
            .iter()
            .map(|v| format!("{} ({}x{} {}, {})", v.name, v.width, v.height, v.content_type, HumanBytes(v.size)))
            .collect();
        if !variants.is_empty() {
            line.push_str(&format!(", variants {}", variants.join(", ")));
        }
    }
    if let Some(size) = confirmed.size {
        line.push_str(&format!(", metadata stripped (now {})", HumanBytes(size)));
    }
    line
}

/// `draftstore confirm`.
pub async fn confirm(args: ConfirmArgs) -> ExitCode {
    if args.final_name.is_some() && args.names.len() > 1 {
        eprintln!("error: --as names one confirmed object: give one draft");
        return ExitCode::from(2);
    }
    let metadata: Option<api::Metadata> = (!args.metadata.is_empty()).then(|| args.metadata.iter().cloned().collect());
    each_name(&args.client, &args.names, |client, name| {
        let request = api::ConfirmUploadRequest {
            object_name: name,
            overwrite: Some(args.overwrite),
            final_name: args.final_name.clone(),
            metadata: metadata.clone(),
        };
        async move {
            let confirmed = client.confirm_upload(&request).await?;
            Ok(confirmed_line(&confirmed))
        }
    })
    .await
}

/// `draftstore stat`: each object as JSON, an image's size, placeholder and variants with it.
pub async fn stat(args: StatArgs) -> ExitCode {
    each_name(&args.client, &args.names, |client, name| async move {
        let object = client.stat_object(&api::ObjectRequest { object_name: name }).await?;
        serde_json::to_string_pretty(&object).map_err(|e| Error::Invalid(e.to_string()))
    })
    .await
}

/// `draftstore delete`.
pub async fn delete(args: DeleteArgs) -> ExitCode {
    each_name(&args.client, &args.names, |client, name| async move {
        client.delete_object(&api::ObjectRequest { object_name: name.clone() }).await?;
        Ok(format!("deleted {name}"))
    })
    .await
}

/// `draftstore discard`.
pub async fn discard(args: DiscardArgs) -> ExitCode {
    each_name(&args.client, &args.names, |client, name| async move {
        client.discard_draft(&api::DiscardDraftRequest { object_name: name.clone() }).await?;
        Ok(format!("discarded {name}"))
    })
    .await
}

/// Runs `operation` on every name in turn, printing its line or the failure; exit 1 if any failed.
async fn each_name<F, Fut>(args: &ClientArgs, names: &[String], operation: F) -> ExitCode
where
    F: Fn(Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    let client = match connect(args) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let output = Output::new(args, false);
    let mut failures = 0;
    for name in names {
        match operation(client.clone(), name.clone()).await {
            Ok(line) => output.done(&line),
            Err(error) => {
                output.error(name, &error);
                failures += 1;
            }
        }
    }
    exit(failures)
}

/// `draftstore ls`: the caller's drafts as a table (or JSON), every page.
pub async fn ls(args: ListArgs) -> ExitCode {
    let fetch = |client: Client, prefix: Option<String>| async move { client.list_all_drafts(prefix.as_deref()).await };
    let row = |d: &api::DraftBody| {
        [d.object_name.clone(), HumanBytes(d.size).to_string(), d.content_type.clone(), d.expires_at.clone()]
    };
    list(&args, "drafts", "EXPIRES", fetch, row).await
}

/// `draftstore objects`: the caller's confirmed objects as a table (or JSON), every page.
pub async fn objects(args: ListArgs) -> ExitCode {
    let fetch =
        |client: Client, prefix: Option<String>| async move { client.list_all_objects(prefix.as_deref()).await };
    let row = |o: &api::ObjectBody| {
        [o.object_name.clone(), HumanBytes(o.size).to_string(), o.content_type.clone(), o.confirmed_at.clone()]
    };
    list(&args, "objects", "CONFIRMED", fetch, row).await
}

/// Every page `fetch` gives, printed as JSON or as a table of `row`s whose last column is headed `last`.
async fn list<T, F, Fut>(args: &ListArgs, what: &str, last: &str, fetch: F, row: impl Fn(&T) -> [String; 4]) -> ExitCode
where
    T: serde::Serialize,
    F: FnOnce(Client, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, Error>>,
{
    let client = match connect(&args.client) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let items = match fetch(client, args.prefix.clone()).await {
        Ok(items) => items,
        Err(error) => {
            Output::new(&args.client, false).error(args.prefix.as_deref().unwrap_or(what), &error);
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&items) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    print!("{}", table(last, items.iter().map(row)));
    ExitCode::SUCCESS
}

/// Rows as aligned columns: name, size, type, then a time under `last`.
fn table(last: &str, rows: impl Iterator<Item = [String; 4]>) -> String {
    let rows: Vec<[String; 4]> = rows.collect();
    let header = ["NAME".to_owned(), "SIZE".to_owned(), "TYPE".to_owned(), last.to_owned()];
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("5M"), Ok(5_000_000));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let draft = |name: &str, size| api::DraftBody {
            object_name: name.to_owned(),
            size,
            content_type: "image/png".to_owned(),
            uploaded_at: "2026-11-29T10:00:00Z".to_owned(),
            expires_at: "2026-11-30T10:00:00Z".to_owned(),
        };
        let drafts = [draft("a.png", 10), draft("photos/long-name.png", 2048)];
        let rows = drafts.iter().map(|d| {
            [d.object_name.clone(), HumanBytes(d.size).to_string(), d.content_type.clone(), d.expires_at.clone()]
        });
        let text = table("EXPIRES", rows);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "NAME                      SIZE  TYPE       EXPIRES");
        assert_eq!(lines[1], "a.png                     10 B  image/png  2026-11-30T10:00:00Z");
        assert_eq!(lines[2], "photos/long-name.png  2.00 KiB  image/png  2026-11-30T10:00:00Z");
    }
}
