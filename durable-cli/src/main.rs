//! `durable`: manage the instances and entities of a Redis task hub from a shell, and serve the
//! HTTP API with its dashboard. See `durable --help` and `docs/cli.md`.

mod output;

use clap::{Args, Parser, Subcommand};
use durable_http::render;
use durable_runtime::backend::Redis;
use durable_runtime::{Client, Error, InstanceQuery, RuntimeStatus};
use output::Out;
use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error talking to Redis (cannot connect, bad URL, task hub misconfigured)
  2  bad usage (unknown command or flag, input that is not JSON, an invalid id or status)
  3  not found (no such instance or entity)
  4  conflict or invalid state (id already in use, instance finished or still running)
  5  start --wait: the instance failed or was terminated (its error is printed)
  6  start --wait: the instance had not finished within --timeout

Environment: DURABLE_REDIS_URL (default for --redis), DURABLE_HUB (--hub),
DURABLE_PARTITIONS (--partitions), DURABLE_HTTP_TOKEN (serve --token).";

/// Manage durable orchestrations and entities on a Redis task hub.
#[derive(Parser, Debug)]
#[command(name = "durable", version, after_help = EXIT_CODES, disable_help_subcommand = true)]
struct Cli {
    /// Redis URL, e.g. redis://user:password@host:6379/0 (user, password, port and db optional),
    /// or a Redis Cluster's, redis+cluster://user:password@host1:7000,host2:7001 (any nodes).
    #[arg(long, global = true, env = "DURABLE_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The task hub: the key prefix the workers use.
    #[arg(long, global = true, env = "DURABLE_HUB", default_value = "durable")]
    hub: String,
    /// The task hub's partition count (default: the one the hub records, else 8).
    #[arg(long, global = true, env = "DURABLE_PARTITIONS")]
    partitions: Option<u32>,
    /// Print JSON (the HTTP API's shapes) instead of tables, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP management API and the dashboard (at /) on this task hub.
    Serve {
        /// Address to listen on (port 0 picks a free port; the first line printed says which).
        #[arg(long, default_value = durable_http::DEFAULT_ADDR)]
        addr: String,
        /// Require `Authorization: Bearer TOKEN` on every API request.
        #[arg(long, env = "DURABLE_HTTP_TOKEN")]
        token: Option<String>,
        /// Export traces over OTLP/HTTP to this collector (`http://host:4318`); needs a build
        /// with the `otel` feature.
        #[arg(long, value_name = "URL")]
        otlp_endpoint: Option<String>,
        /// Serve the API without a token on an address other machines can reach. Without this
        /// flag, an address that is not loopback (127.0.0.1, ::1, localhost) needs --token:
        /// the API starts, terminates and purges instances.
        #[arg(long)]
        allow_unauthenticated: bool,
    },
    /// Start an orchestration; prints the instance id, or with --wait its output.
    ///
    /// `durable start greet '"Oslo"' --wait` waits for the instance to finish and prints its
    /// output; the exit code says how it ended (0 completed, 5 failed or terminated, 6 still
    /// running at --timeout).
    Start {
        /// The orchestrator's registered name.
        name: String,
        /// The input, as JSON (default null); or give it with --input.
        #[arg(value_name = "INPUT", conflicts_with = "input")]
        input_arg: Option<String>,
        /// The input, as JSON (default null).
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// The instance id (default: a new random one).
        #[arg(long)]
        id: Option<String>,
        /// Wait for the instance to finish, print its output (or error), and exit by its
        /// outcome.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
        timeout: u64,
    },
    /// Show an instance: status, input, output, error, and the live locals of a running one.
    Status {
        /// The instance id.
        id: String,
    },
    /// Show an instance's history, oldest first.
    History {
        /// The instance id.
        id: String,
    },
    /// List orchestration instances, in creation order.
    List {
        /// Only these statuses (comma-separated or repeated): Pending, Running, Suspended,
        /// Completed, Failed, Terminated, ContinuedAsNew.
        #[arg(long, value_delimiter = ',', value_parser = parse_status)]
        status: Vec<RuntimeStatus>,
        /// Only instances of this orchestrator.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        top: u32,
    },
    /// Raise an external event on an instance.
    Raise {
        /// The instance id.
        id: String,
        /// The event name.
        event: String,
        /// The event data, as JSON (default null).
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// Terminate a running instance (with --recursive, its sub-orchestrations too), or every
    /// live instance matching filters.
    ///
    /// `durable terminate --name nightly --created-before 2026-01-01T00:00:00Z --dry-run`
    /// counts the live instances that match all the filters given; without `--dry-run` it
    /// terminates them and prints how many.
    Terminate {
        /// The instance id (or give filters instead).
        id: Option<String>,
        /// Why (recorded in the history and the status).
        #[arg(long, default_value = "")]
        reason: String,
        /// Also terminate every sub-orchestration of it still running, and theirs.
        #[arg(long)]
        recursive: bool,
        #[command(flatten)]
        filter: Filter,
    },
    /// Suspend a running instance: it takes no step until resumed.
    Suspend(Control),
    /// Resume a suspended instance.
    Resume(Control),
    /// Rewind a failed instance: its failed tasks run again.
    Rewind(Control),
    /// Delete a finished instance and its history, or every finished one matching filters.
    ///
    /// `durable purge ID` deletes one instance; `durable purge --status completed
    /// --created-before 2026-01-01T00:00:00Z` deletes every finished instance that matches all
    /// the filters given, and prints how many. Running instances and entities are never
    /// deleted: a live status (Pending, Running, Suspended, ContinuedAsNew) is bad usage.
    Purge {
        /// The instance id (or give filters instead).
        id: Option<String>,
        #[command(flatten)]
        filter: Filter,
    },
    /// Read, signal and list entities.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Schedules: start an orchestrator at each fire time of a cron expression.
    ///
    /// `durable schedule create nightly '0 2 * * *' report '"ops"' --timezone Europe/Paris`
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Orchestrator versions in flight: instances, blocked ones, where they wait.
    ///
    /// Per orchestrator name and version: the instances not finished, how many of them no
    /// registered code can run now (blocked: `durable status ID` says why), and where they are
    /// suspended. What to look at before a deploy.
    Versions,
    /// Entries the workers could not read, newest first.
    ///
    /// A message variant from a newer release during a rolling upgrade, say: each was moved
    /// out of its stream to the hub's dead-letter stream with the reason and its fields, so it
    /// is neither lost nor read again and again.
    DeadLetters {
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        top: u32,
    },
    /// Write the in-flight instances to stdout, one JSON object a line.
    ///
    /// Each line is a `durable::ExportedInstance` (status, snapshot, history): what a CI test
    /// checks the next build against with `durable::testing::check_resume` before a deploy.
    Export {
        /// Export the instances not finished (Pending, Running, Suspended, ContinuedAsNew); the
        /// only kind of export there is, so it is required.
        #[arg(long)]
        in_flight: bool,
        /// Only instances of this orchestrator.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Which instances a bulk `purge` or `terminate` acts on.
#[derive(Args, Debug)]
struct Filter {
    /// Only these statuses (comma-separated or repeated). purge: finished ones (Completed,
    /// Failed, Terminated; default all three); terminate: live ones (Pending, Running,
    /// Suspended, ContinuedAsNew; default all four).
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<RuntimeStatus>,
    /// Only instances of this orchestrator.
    #[arg(long)]
    name: Option<String>,
    /// Only instances created before this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    created_before: Option<u64>,
    /// Only instances created at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    created_after: Option<u64>,
    /// Only count the instances it would act on, and print that.
    #[arg(long)]
    dry_run: bool,
}

impl Filter {
    fn given(&self) -> bool {
        !self.status.is_empty() || self.name.is_some() || self.created_before.is_some() || self.created_after.is_some()
    }

    /// Bad usage of a command taking an instance id or these filters: both, neither, or a
    /// status `refused` says it cannot act on (`why`). `bulk` says what the filters do.
    fn check(
        &self,
        has_id: bool,
        bulk: &str,
        refused: impl Fn(&RuntimeStatus) -> bool,
        why: &str,
    ) -> Result<(), Failure> {
        let filters = "filters (--status, --name, --created-before, --created-after)";
        if has_id && (self.given() || self.dry_run) {
            return Err(Failure::usage(format!("give an instance id or {filters}, not both")));
        }
        if !has_id && !self.given() {
            return Err(Failure::usage(format!("give an instance id, or {filters} to {bulk}")));
        }
        match self.status.iter().find(|s| refused(s)) {
            Some(s) => Err(Failure::usage(format!("--status {s}: {why}"))),
            None => Ok(()),
        }
    }

    fn query(&self) -> InstanceQuery {
        let mut query = InstanceQuery::new();
        query.statuses = self.status.clone();
        query.name = self.name.clone();
        query.created_to_ms = self.created_before;
        query.created_from_ms = self.created_after;
        query
    }
}

#[derive(Args, Debug)]
struct Control {
    /// The instance id.
    id: String,
    /// Why (recorded in the history and the status).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    /// Create a schedule: each run is an instance of NAME with id ID@FIRE-TIME (RFC 3339 UTC).
    Create {
        /// The schedule id (its instance is schedule:ID).
        id: String,
        /// The cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6
        /// (seconds first); quote it.
        cron: String,
        /// The orchestrator's registered name.
        name: String,
        /// Each run's input, as JSON (default null).
        #[arg(value_name = "INPUT")]
        input: Option<String>,
        /// The IANA time zone of the fire times (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// When a fire time comes and the previous run is still going: skip (default),
        /// buffer-one, allow-all.
        #[arg(long)]
        overlap: Option<String>,
        /// Fire times missed during downtime: run-last (default), skip-missed, run-all (with
        /// --catch-up-window).
        #[arg(long)]
        catch_up: Option<String>,
        /// With --catch-up run-all: how far back, in seconds.
        #[arg(long, value_name = "SECS")]
        catch_up_window: Option<u64>,
    },
    /// List the schedules: spec, state, next fire time, last run.
    List,
    /// Pause a schedule (no run starts until resumed).
    Pause {
        /// The schedule id.
        id: String,
    },
    /// Resume a paused schedule (the catch-up policy applies to what was missed).
    Resume {
        /// The schedule id.
        id: String,
    },
    /// Delete a schedule (runs in flight go on; the id is free again).
    Delete {
        /// The schedule id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum EntityCommand {
    /// Show an entity's state, last error and last change.
    Get {
        /// The entity name.
        name: String,
        /// The entity key.
        key: String,
    },
    /// Signal an operation (one-way; the entity is created by its first operation).
    Signal {
        /// The entity name.
        name: String,
        /// The entity key.
        key: String,
        /// The operation.
        op: String,
        /// The operation's input, as JSON (default null).
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
    },
    /// List entities.
    List {
        /// Only entities of this name.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        top: u32,
    },
    /// The last operations an entity applied, oldest first: when, what, who sent it, result.
    History {
        /// The entity name.
        name: String,
        /// The entity key.
        key: String,
    },
    /// Delete an entity: its state and the operations queued for it.
    Purge {
        /// The entity name.
        name: String,
        /// The entity key.
        key: String,
    },
}

fn parse_status(s: &str) -> Result<RuntimeStatus, String> {
    RuntimeStatus::ALL.into_iter().find(|r| r.to_string().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
        format!("unknown status {s:?}; use one of {}", RuntimeStatus::ALL.map(|r| r.to_string()).join(", "))
    })
}

/// An RFC 3339 time, in ms since the Unix epoch.
fn parse_time(s: &str) -> Result<u64, String> {
    render::parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time (like 2026-01-02T03:04:05Z)"))
}

/// A failure, with the exit code it means.
#[derive(Debug)]
struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self { code: 2, kind: "BadUsage", message: message.into() }
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self { code: 3, kind: "NotFound", message: message.into() }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (code, kind) = match &e {
            Error::InvalidInstanceId { .. } => (2, "InvalidInstanceId"),
            Error::Payload(_) | Error::PayloadTooLarge { .. } => (2, "BadPayload"),
            Error::InstanceNotFound(_) => (3, "InstanceNotFound"),
            Error::InstanceAlreadyExists(_) => (4, "InstanceAlreadyExists"),
            Error::InvalidSchedule { .. } => (2, "InvalidSchedule"),
            Error::ScheduleNotFound(_) => (3, "ScheduleNotFound"),
            Error::ScheduleAlreadyExists(_) => (4, "ScheduleAlreadyExists"),
            Error::InvalidState { .. } => (4, "InvalidState"),
            Error::InvalidQuery(_) => (2, "BadUsage"),
            Error::Config(_) => (1, "Config"),
            _ => (1, "Backend"),
        };
        Self { code, kind, message: e.to_string() }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // --help and --version exit 0, usage errors 2.
        Err(e) => e.exit(),
    };
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(json, Failure { code: 1, kind: "Runtime", message: format!("cannot start tokio: {e}") }),
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(json, f),
    }
}

fn fail(json: bool, f: Failure) -> ExitCode {
    if json {
        eprintln!("{}", json!({ "error": f.message, "code": f.kind }));
    } else {
        eprintln!("durable: {}", f.message);
    }
    ExitCode::from(f.code)
}

fn parse_json(flag: &str, text: Option<&str>) -> Result<Value, Failure> {
    match text {
        None => Ok(Value::Null),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| Failure::usage(format!("{flag}: {t:?} is not JSON ({e}); strings need quotes: '\"text\"'"))),
    }
}

/// The partition count the task hub records (`{hub}:partitions`), if any.
async fn hub_partitions(url: &str, hub: &str) -> Result<Option<u32>, Failure> {
    match tokio::time::timeout(std::time::Duration::from_secs(5), Redis::hub_partitions(url, hub)).await {
        Err(_) => Err(Failure {
            code: 1,
            kind: "Backend",
            message: format!("redis at {}: no answer within 5 s", redact(url)),
        }),
        Ok(Err(Error::Config(e))) => Err(Failure { code: 1, kind: "Config", message: redact_in(&e, url) }),
        Ok(Err(e)) => Err(Failure { code: 1, kind: "Backend", message: format!("redis at {}: {e}", redact(url)) }),
        Ok(Ok(n)) => Ok(n),
    }
}

/// `message` with `url`'s password replaced (a configuration error quotes the URL).
fn redact_in(message: &str, url: &str) -> String {
    message.replace(url, &redact(url))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn connect(cli: &Cli) -> Result<Client, Failure> {
    let partitions = match cli.partitions {
        Some(n) => n,
        None => hub_partitions(&cli.redis, &cli.hub).await?.unwrap_or(8),
    };
    let backend =
        Redis::builder(cli.redis.clone()).prefix(cli.hub.clone()).partitions(partitions).connect().await.map_err(
            |e| Failure { code: 1, kind: "Backend", message: format!("redis at {}: {e}", redact(&cli.redis)) },
        )?;
    Ok(Client::new(backend))
}

/// Bad usage is reported before connecting, so that it exits 2 whether Redis is up or not.
fn check_usage(command: &Command) -> Result<(), Failure> {
    match command {
        Command::Start { input, input_arg, .. } => {
            parse_json(if input_arg.is_some() { "INPUT" } else { "--input" }, input_arg.as_deref().or(input.as_deref()))
                .map(drop)
        }
        Command::Serve { addr, token, allow_unauthenticated, .. } => {
            check_exposure(addr, token.as_deref().is_some_and(|t| !t.is_empty()), *allow_unauthenticated)
        }
        Command::Entity(EntityCommand::Purge { name, .. } | EntityCommand::History { name, .. }) => {
            check_entity_name(name)
        }
        Command::Raise { data, .. } => parse_json("--data", data.as_deref()).map(drop),
        Command::Schedule(ScheduleCommand::Create {
            cron,
            input,
            timezone,
            overlap,
            catch_up,
            catch_up_window,
            ..
        }) => {
            render::parse_schedule(
                cron,
                timezone.as_deref(),
                overlap.as_deref(),
                catch_up.as_deref(),
                *catch_up_window,
            )?;
            parse_json("INPUT", input.as_deref()).map(drop)
        }
        Command::Entity(EntityCommand::Signal { name, input, .. }) => {
            check_entity_name(name)?;
            parse_json("--input", input.as_deref()).map(drop)
        }
        Command::Entity(EntityCommand::Get { name, .. }) => check_entity_name(name),
        Command::Entity(EntityCommand::List { name: Some(name), .. }) => check_entity_name(name),
        Command::Purge { id, filter } => filter.check(
            id.is_some(),
            "purge every finished instance that matches them (--status completed,failed,terminated for all)",
            |s| !s.is_terminal(),
            "only finished instances (Completed, Failed, Terminated) can be purged; terminate them first",
        ),
        Command::Terminate { id: None, recursive: true, .. } => {
            Err(Failure::usage("--recursive terminates one instance and its sub-orchestrations: give its id"))
        }
        Command::Terminate { id, filter, .. } => filter.check(
            id.is_some(),
            "terminate every live instance that matches them (--status pending,running,suspended for all)",
            |s| s.is_terminal(),
            "only live instances (Pending, Running, Suspended, ContinuedAsNew) can be terminated",
        ),
        Command::Export { in_flight: false, .. } => Err(Failure::usage(
            "export writes the instances in flight, and only those: use `durable export --in-flight [--name NAME]`",
        )),
        _ => Ok(()),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    check_usage(&cli.command)?;
    let client = connect(&cli).await?;
    let out = Out { json: cli.json };
    match cli.command {
        Command::Serve { addr, token, otlp_endpoint, .. } => {
            let telemetry = otlp(otlp_endpoint.as_deref())?;
            let served = serve(client, &addr, token).await;
            #[cfg(feature = "otel")]
            if let Some(t) = telemetry {
                // Export what is buffered before exiting.
                let _ = t.shutdown();
            }
            #[cfg(not(feature = "otel"))]
            let _ = telemetry;
            served
        }
        Command::Start { name, input, input_arg, id, wait, timeout } => {
            let which = if input_arg.is_some() { "INPUT" } else { "--input" };
            let input = parse_json(which, input_arg.as_deref().or(input.as_deref()))?;
            let id = match id {
                Some(id) => client.start_by_name_with_id(&name, id, input).await?,
                None => client.start_by_name(&name, input).await?,
            };
            if wait {
                return wait_and_report(&client, &out, id.as_str(), std::time::Duration::from_secs(timeout)).await;
            }
            if out.json {
                out.value(&json!({ "id": id.as_str(), "name": name }));
            } else {
                out.line(id.as_str());
            }
            Ok(())
        }
        Command::Status { id } => {
            let s = client.status(&id).await?.ok_or_else(|| Error::InstanceNotFound(id.clone()))?;
            let state = if s.is_finished() { None } else { client.state(&id).await? };
            out.status(&s, state);
            Ok(())
        }
        Command::History { id } => {
            let h = client.history(&id).await?;
            out.history(&h);
            Ok(())
        }
        Command::List { status, name, top } => {
            let top = top as usize;
            let mut query = InstanceQuery::new().with_limit(top.min(1000));
            query.statuses = status;
            query.name = name;
            let mut found = Vec::new();
            loop {
                let page = client.list(query.clone()).await?;
                found.extend(
                    page.instances.into_iter().filter(|s| !durable_runtime::ids::is_entity_instance(&s.instance_id)),
                );
                match page.continuation {
                    Some(c) if found.len() < top => query = query.with_continuation(c),
                    _ => break,
                }
            }
            found.truncate(top);
            out.list(&found);
            Ok(())
        }
        Command::Raise { id, event, data } => {
            let data = parse_json("--data", data.as_deref())?;
            client.raise_event(&id, &event, data).await?;
            out.done(&id, "raiseEvent", &format!("raised event {event:?} on {id}"));
            Ok(())
        }
        Command::Terminate { id: Some(id), reason, recursive: false, .. } => {
            client.terminate(&id, &reason).await?;
            out.done(&id, "terminate", &format!("terminating {id}"));
            Ok(())
        }
        Command::Terminate { id: Some(id), reason, recursive: true, .. } => {
            let n = client.terminate_recursive(&id, &reason).await?;
            if out.json {
                out.value(&json!({ "id": id, "instancesTerminated": n }));
            } else {
                out.line(&format!("terminating {id} and {} sub-orchestrations", n - 1));
            }
            Ok(())
        }
        Command::Terminate { id: None, reason, filter, .. } => {
            if filter.dry_run {
                let query = durable_runtime::client::live_query(filter.query())?;
                let n = client.count(query).await?;
                out.count(n, "would terminate");
                return Ok(());
            }
            let n = client.terminate_where(filter.query(), &reason).await?;
            if out.json {
                out.value(&json!({ "instancesTerminated": n }));
            } else {
                out.line(&format!("terminating {n} instance{}", if n == 1 { "" } else { "s" }));
            }
            Ok(())
        }
        Command::Suspend(c) => {
            client.suspend(&c.id, &c.reason).await?;
            out.done(&c.id, "suspend", &format!("suspending {}", c.id));
            Ok(())
        }
        Command::Resume(c) => {
            client.resume(&c.id, &c.reason).await?;
            out.done(&c.id, "resume", &format!("resuming {}", c.id));
            Ok(())
        }
        Command::Rewind(c) => {
            client.rewind(&c.id, &c.reason).await?;
            out.done(&c.id, "rewind", &format!("rewinding {}", c.id));
            Ok(())
        }
        Command::Purge { id: None, filter } => {
            let mut query = filter.query();
            if filter.dry_run {
                if query.statuses.is_empty() {
                    query.statuses = RuntimeStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect();
                }
                let n = client.count(query).await?;
                out.count(n, "would purge");
                return Ok(());
            }
            let n = client.purge_where(query).await?;
            if out.json {
                out.value(&json!({ "instancesDeleted": n }));
            } else {
                out.line(&format!("purged {n} instance{}", if n == 1 { "" } else { "s" }));
            }
            Ok(())
        }
        Command::Purge { id: Some(id), .. } => {
            if durable_runtime::ids::is_entity_instance(&id) {
                return Err(Failure::usage(format!("{id:?} is an entity id; purge entities over the HTTP API")));
            }
            if !client.purge(&id).await? {
                return Err(Error::InstanceNotFound(id).into());
            }
            out.done(&id, "purge", &format!("purged {id}"));
            Ok(())
        }
        Command::Entity(EntityCommand::Get { name, key }) => {
            check_entity_name(&name)?;
            match client.entity(&name, &key).await? {
                Some(e) if e.state.is_some() => {
                    out.entity(&e);
                    Ok(())
                }
                Some(e) => Err(Failure::not_found(format!(
                    "entity {name}/{key} has no state{}",
                    e.last_error.map(|m| format!(" (last error: {m})")).unwrap_or_default()
                ))),
                None => Err(Failure::not_found(format!(
                    "entity {name}/{key} does not exist (it is created by its first operation)"
                ))),
            }
        }
        Command::Entity(EntityCommand::Signal { name, key, op, input }) => {
            check_entity_name(&name)?;
            let input = parse_json("--input", input.as_deref())?;
            client.signal_entity_by_name(&name, &key, &op, input).await?;
            if out.json {
                out.value(&json!({ "name": name, "key": key, "op": op, "signaled": true }));
            } else {
                out.line(&format!("signaled {name}/{key} {op}"));
            }
            Ok(())
        }
        Command::DeadLetters { top } => {
            let list = client.dead_letters(top as usize).await?;
            out.dead_letters(&list);
            Ok(())
        }
        Command::Versions => {
            let versions = client.versions().await?;
            out.versions(&versions);
            Ok(())
        }
        Command::Export { name, .. } => {
            let exported = client.export_in_flight(name.as_deref()).await?;
            match out.exported(&exported) {
                // A reader that stopped early (`| head -1`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Failure { code: 1, kind: "Output", message: format!("writing the export to stdout: {e}") })
                }
                _ => Ok(()),
            }
        }
        Command::Schedule(ScheduleCommand::Create {
            id,
            cron,
            name,
            input,
            timezone,
            overlap,
            catch_up,
            catch_up_window,
        }) => {
            let schedule = render::parse_schedule(
                &cron,
                timezone.as_deref(),
                overlap.as_deref(),
                catch_up.as_deref(),
                catch_up_window,
            )?;
            let input = parse_json("INPUT", input.as_deref())?;
            client.schedule_by_name(id.clone(), schedule, &name, input).await?;
            if out.json {
                out.value(&json!({ "id": id, "instanceId": format!("schedule:{id}"), "orchestrator": name }));
            } else {
                out.line(&id);
            }
            Ok(())
        }
        Command::Schedule(ScheduleCommand::List) => {
            let list = client.list_schedules().await?;
            out.schedules(&list);
            Ok(())
        }
        Command::Schedule(ScheduleCommand::Pause { id }) => {
            client.pause_schedule(&id).await?;
            out.done(&format!("schedule:{id}"), "pause", &format!("schedule {id} paused"));
            Ok(())
        }
        Command::Schedule(ScheduleCommand::Resume { id }) => {
            client.resume_schedule(&id).await?;
            out.done(&format!("schedule:{id}"), "resume", &format!("schedule {id} resumed"));
            Ok(())
        }
        Command::Schedule(ScheduleCommand::Delete { id }) => {
            client.delete_schedule(&id).await?;
            out.done(&format!("schedule:{id}"), "delete", &format!("schedule {id} deleted"));
            Ok(())
        }
        Command::Entity(EntityCommand::List { name, top }) => {
            if let Some(n) = &name {
                check_entity_name(n)?;
            }
            let list = client.list_entities(name.as_deref(), top as usize).await?;
            if out.json {
                out.value(&json!({ "entities": list.iter().map(render::entity).collect::<Vec<_>>() }));
            } else {
                out.entities(&list);
            }
            Ok(())
        }
        Command::Entity(EntityCommand::History { name, key }) => {
            let journal = client.entity_journal(&name, &key).await.map_err(|e| match e {
                Error::InstanceNotFound(_) => Failure::not_found(format!("entity {name}/{key} does not exist")),
                e => e.into(),
            })?;
            if out.json {
                let ops: Vec<Value> = journal.iter().map(render::journal_entry).collect();
                out.value(&json!({ "name": name, "key": key, "operations": ops }));
            } else {
                out.entity_journal(&journal);
            }
            Ok(())
        }
        Command::Entity(EntityCommand::Purge { name, key }) => {
            if !client.purge_entity(&name, &key).await? {
                return Err(Failure::not_found(format!("no entity {name}/{key}")));
            }
            out.done(&format!("@{name}@{key}"), "purge", &format!("purged entity {name}/{key}"));
            Ok(())
        }
    }
}

fn check_entity_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name.contains('@') {
        return Err(Failure::usage(format!("entity name {name:?} must be non-empty and must not contain `@`")));
    }
    Ok(())
}

/// With `--otlp-endpoint`, export traces there (the `otel` feature).
#[cfg(feature = "otel")]
fn otlp(endpoint: Option<&str>) -> Result<Option<durable::telemetry::Telemetry>, Failure> {
    endpoint
        .map(|e| {
            durable::telemetry::init_otlp(e).map_err(|e| Failure { code: 2, kind: "Otlp", message: e.to_string() })
        })
        .transpose()
}

/// Without the `otel` feature, `--otlp-endpoint` is refused, saying how to get it.
#[cfg(not(feature = "otel"))]
fn otlp(endpoint: Option<&str>) -> Result<Option<()>, Failure> {
    match endpoint {
        Some(_) => Err(Failure {
            code: 2,
            kind: "Usage",
            message: "--otlp-endpoint needs OpenTelemetry, which this build of `durable` does not have: \
                      build it with `cargo install --path durable-cli --features otel`"
                .to_string(),
        }),
        None => Ok(None),
    }
}

/// Wait for an instance: print its output (or its status, with --json), and fail by how it ended.
async fn wait_and_report(client: &Client, out: &Out, id: &str, timeout: std::time::Duration) -> Result<(), Failure> {
    let s = match client.wait_for_completion(id, timeout).await {
        Ok(s) => s,
        Err(Error::Timeout { .. }) => {
            return Err(Failure {
                code: 6,
                kind: "Timeout",
                message: format!("instance {id} had not finished after {timeout:?}; `durable status {id}` shows it"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if out.json {
        out.value(&render::status(&s, false));
    }
    match s.runtime_status {
        RuntimeStatus::Completed => {
            if !out.json {
                out.line(&s.output.clone().unwrap_or_else(|| "null".into()));
            }
            Ok(())
        }
        other => Err(Failure {
            code: 5,
            kind: "InstanceFailed",
            message: format!(
                "instance {id} {}: {}",
                other.to_string().to_lowercase(),
                s.error.clone().or(s.reason.clone()).unwrap_or_default()
            ),
        }),
    }
}

/// A server on an address other machines can reach serves the management API to them: refuse
/// that without a token unless asked for explicitly.
fn check_exposure(addr: &str, has_token: bool, allow_unauthenticated: bool) -> Result<(), Failure> {
    if has_token || allow_unauthenticated {
        return Ok(());
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "refusing to serve the management API (start, terminate, purge) without a token on {addr}, which other \
         machines can reach: give --token TOKEN (or DURABLE_HTTP_TOKEN), listen on 127.0.0.1, or pass \
         --allow-unauthenticated if the network is trusted"
    )))
}

async fn serve(client: Client, addr: &str, token: Option<String>) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Failure {
        code: 1,
        kind: "Listen",
        message: format!("cannot listen on {addr}: {e}"),
    })?;
    let local = listener.local_addr().map_err(|e| Failure { code: 1, kind: "Listen", message: e.to_string() })?;
    let mut config = durable_http::HttpConfig::new();
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        config = config.with_token(t);
    }
    // Not println!: a closed stdout must not stop the server.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on http://{local}\ndashboard: http://{local}/");
    let _ = stdout.flush();
    let shutdown = async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    durable_http::serve_listener(listener, client, config, shutdown).await.map_err(|e| Failure {
        code: 1,
        kind: "Serve",
        message: format!("serving on {local}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
    }

    #[test]
    fn statuses_parse_in_any_case() {
        assert_eq!(parse_status("running"), Ok(RuntimeStatus::Running));
        assert!(parse_status("nope").unwrap_err().contains("Running"));
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
