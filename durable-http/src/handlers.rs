//! The route handlers.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, P, Q};
use crate::render;
use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use durable_runtime::ids::is_entity_instance;
use durable_runtime::{Error, InstanceQuery, InstanceStatus, RuntimeStatus, TraceContext};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;

type ApiResult = Result<Response, ApiError>;

/// The API's public base URL for this request: config, or `http://Host` + nesting prefix.
pub(crate) struct Base(String);

impl FromRequestParts<AppState> for Base {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(b) = &state.config.base_url {
            return Ok(Base(b.clone()));
        }
        let path = parts.uri.path();
        let prefix = parts
            .extensions
            .get::<OriginalUri>()
            .and_then(|o| o.0.path().strip_suffix(path).map(str::to_string))
            .unwrap_or_default();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c)));
        Ok(Base(match host {
            Some(h) => format!("http://{h}{prefix}"),
            None => prefix,
        }))
    }
}

/// Percent-encode one path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn instance_url(base: &Base, id: &str) -> String {
    format!("{}/instances/{}", base.0, seg(id))
}

fn location(url: &str) -> (header::HeaderName, HeaderValue) {
    // Ids are percent-encoded and hosts filtered, so this is always a valid header value.
    (header::LOCATION, HeaderValue::from_str(url).unwrap_or_else(|_| HeaderValue::from_static("/")))
}

fn management_urls(base: &Base, id: &str) -> Value {
    let u = instance_url(base, id);
    json!({
        "id": id,
        "statusQueryGetUri": u,
        "sendEventPostUri": format!("{u}/raiseEvent/{{eventName}}"),
        "terminatePostUri": format!("{u}/terminate?reason={{text}}"),
        "suspendPostUri": format!("{u}/suspend?reason={{text}}"),
        "resumePostUri": format!("{u}/resume?reason={{text}}"),
        "rewindPostUri": format!("{u}/rewind?reason={{text}}"),
        "purgeHistoryDeleteUri": u,
    })
}

/// Instance ids of entities (`@name@key`) are not orchestration instances here.
fn orchestration_id(id: &str) -> Result<(), ApiError> {
    if is_entity_instance(id) {
        return Err(ApiError::not_found(
            "InstanceNotFound",
            format!(
                "no orchestration instance with id {id:?} (ids starting with `@` are entities: use /entities/{{name}}/{{key}})"
            ),
        ));
    }
    Ok(())
}

fn not_found_instance(id: &str) -> ApiError {
    Error::InstanceNotFound(id.to_string()).into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartQuery {
    instance_id: Option<String>,
}

/// `POST /orchestrations/{name}[?instanceId=ID]`. A W3C `traceparent` header makes the
/// instance's trace a child of the caller's span.
pub(crate) async fn start(
    State(st): State<AppState>,
    P(name): P<String>,
    Q(q): Q<StartQuery>,
    base: Base,
    headers: HeaderMap,
    JsonBody(input): JsonBody,
) -> ApiResult {
    TraceContext::scope(traceparent(&headers), start_named(st, name, q, base, input)).await
}

/// The caller's trace context: its `traceparent` header, if it is a valid one.
fn traceparent(headers: &HeaderMap) -> Option<TraceContext> {
    headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceContext::parse)
}

/// `POST /orchestrations/versions`: the route `GET /orchestrations/versions` takes this path,
/// so an orchestrator named `versions` is started here.
pub(crate) async fn start_versions(
    State(st): State<AppState>,
    Q(q): Q<StartQuery>,
    base: Base,
    headers: HeaderMap,
    JsonBody(input): JsonBody,
) -> ApiResult {
    TraceContext::scope(traceparent(&headers), start_named(st, "versions".to_string(), q, base, input)).await
}

async fn start_named(st: AppState, name: String, q: StartQuery, base: Base, input: Value) -> ApiResult {
    if let Some(known) = &st.config.orchestrators
        && !known.contains(&name)
    {
        return Err(ApiError::not_found(
            "UnknownOrchestrator",
            format!("unknown orchestrator {name:?}: the workers register {}", known.join(", ")),
        )
        .with("known", json!(known)));
    }
    if let Some(id) = &q.instance_id
        && id.starts_with('@')
    {
        return Err(Error::InvalidInstanceId {
            id: id.clone(),
            reason: "ids starting with `@` are reserved for entities".to_string(),
        }
        .into());
    }
    let id = match q.instance_id {
        Some(id) => st.client.start_by_name_with_id(&name, id, input).await?,
        None => st.client.start_by_name(&name, input).await?,
    };
    let body = management_urls(&base, &id);
    let loc = location(&instance_url(&base, &id));
    Ok((StatusCode::ACCEPTED, [loc], Json(body)).into_response())
}

/// `GET /orchestrations/versions`: per orchestrator name and version, the instances in flight,
/// how many are blocked, and where they are suspended.
pub(crate) async fn versions(State(st): State<AppState>) -> ApiResult {
    let versions = st.client.versions().await?;
    Ok(Json(versions.iter().map(render::version_summary).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusQuery {
    show_history: Option<String>,
    show_input: Option<String>,
    show_state: Option<String>,
}

/// `GET /instances/{id}`.
pub(crate) async fn status(
    State(st): State<AppState>,
    P(id): P<String>,
    Q(q): Q<StatusQuery>,
    base: Base,
) -> ApiResult {
    let (show_history, show_input, show_state) = (
        render::flag("showHistory", &q.show_history)?,
        render::flag("showInput", &q.show_input)?,
        render::flag("showState", &q.show_state)?,
    );
    orchestration_id(&id)?;
    let s = st.client.status(&id).await?.ok_or_else(|| not_found_instance(&id))?;
    let mut body = render::status(&s, show_input);
    if show_history {
        let history = match st.client.history(&id).await {
            Ok(h) => h.iter().map(render::history_event).collect(),
            Err(Error::InstanceNotFound(_)) => Vec::new(), // purged in between
            Err(e) => return Err(e.into()),
        };
        body["history"] = Value::Array(history);
    }
    if show_state {
        body["state"] = st.client.state(&id).await?.unwrap_or(Value::Null);
    }
    Ok(match s.runtime_status {
        RuntimeStatus::Completed => (StatusCode::OK, Json(body)).into_response(),
        RuntimeStatus::Failed | RuntimeStatus::Terminated => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
        _ => (StatusCode::ACCEPTED, [location(&instance_url(&base, &id))], Json(body)).into_response(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    runtime_status: Option<String>,
    created_time_from: Option<String>,
    created_time_to: Option<String>,
    name: Option<String>,
    instance_id_prefix: Option<String>,
    top: Option<String>,
    continuation_token: Option<String>,
    show_input: Option<String>,
    /// Bulk purge and terminate: only count the matches.
    dry_run: Option<String>,
    /// Bulk terminate: why.
    reason: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<InstanceQuery, ApiError> {
        let mut q = InstanceQuery::new();
        if let Some(list) = &self.runtime_status {
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let status = RuntimeStatus::ALL
                    .into_iter()
                    .find(|r| r.to_string().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "BadQuery",
                            format!(
                                "runtimeStatus: unknown status {s:?}; use a comma-separated list of {}",
                                RuntimeStatus::ALL.map(|r| r.to_string()).join(", ")
                            ),
                        )
                    })?;
                q = q.with_status(status);
            }
        }
        let time = |name: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
            v.as_deref()
                .map(|t| {
                    render::parse_rfc3339(t).ok_or_else(|| {
                        ApiError::bad_request(
                            "BadQuery",
                            format!("{name}: {t:?} is not an RFC 3339 time (like 2026-01-02T03:04:05Z)"),
                        )
                    })
                })
                .transpose()
        };
        q.created_from_ms = time("createdTimeFrom", &self.created_time_from)?;
        q.created_to_ms = time("createdTimeTo", &self.created_time_to)?;
        if let Some(n) = &self.name {
            q = q.with_name(n.clone());
        }
        if let Some(p) = self.instance_id_prefix.as_deref().filter(|p| !p.is_empty()) {
            q = q.with_instance_id_prefix(p);
        }
        Ok(q)
    }
}

/// `top`: 1..=1000, default 100.
fn parse_top(top: &Option<String>) -> Result<usize, ApiError> {
    match top.as_deref() {
        None => Ok(100),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => {
                Err(ApiError::bad_request("BadQuery", format!("top must be a whole number from 1 to 1000, not {t:?}")))
            }
        },
    }
}

fn bad_continuation(e: Error, given: bool) -> ApiError {
    match e {
        Error::Backend(m) if given && m.contains("continuation") => ApiError::bad_request("BadContinuationToken", m),
        e => e.into(),
    }
}

/// `GET /instances?...`: one page of orchestration instances (entities are left out).
pub(crate) async fn list(State(st): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult {
    let top = parse_top(&q.top)?;
    let show_input = render::flag("showInput", &q.show_input)?;
    let mut query = q.filter()?;
    // An empty token is no token: the first page.
    let token = q.continuation_token.as_deref().filter(|t| !t.is_empty());
    let given = token.is_some();
    if let Some(t) = token {
        query = query.with_continuation(render::decode_token(t)?);
    }
    let mut out: Vec<InstanceStatus> = Vec::new();
    let continuation = loop {
        // Ask for exactly what is missing so the backend's continuation is where this page ends.
        let page =
            st.client.list(query.clone().with_limit(top - out.len())).await.map_err(|e| bad_continuation(e, given))?;
        out.extend(page.instances.into_iter().filter(|s| !is_entity_instance(&s.instance_id)));
        match page.continuation {
            Some(c) if out.len() < top => query = query.with_continuation(c),
            c => break c,
        }
    };
    let token = continuation.as_deref().map(render::encode_token);
    let body = json!({
        "instances": out.iter().map(|s| render::status(s, show_input)).collect::<Vec<_>>(),
        "continuationToken": token,
    });
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    if let Some(t) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        resp.headers_mut().insert("x-ms-continuation-token", t);
    }
    Ok(resp)
}

/// `DELETE /instances/{id}`.
pub(crate) async fn purge_one(State(st): State<AppState>, P(id): P<String>) -> ApiResult {
    orchestration_id(&id)?;
    if st.client.purge(&id).await? {
        Ok((StatusCode::OK, Json(json!({ "instancesDeleted": 1 }))).into_response())
    } else {
        Err(not_found_instance(&id))
    }
}

/// `DELETE /instances?...`: purge the finished instances matching the filter.
pub(crate) async fn purge_many(State(st): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult {
    if q.top.is_some() || q.continuation_token.is_some() || q.show_input.is_some() || q.reason.is_some() {
        return Err(ApiError::bad_request(
            "BadQuery",
            "a bulk purge takes runtimeStatus, createdTimeFrom, createdTimeTo, name, instanceIdPrefix and dryRun only",
        ));
    }
    let dry_run = render::flag("dryRun", &q.dry_run)?;
    let mut query = q.filter()?;
    // Live statuses are never purged: they match nothing here (the client refuses them).
    let asked = std::mem::take(&mut query.statuses);
    query.statuses =
        RuntimeStatus::ALL.into_iter().filter(|s| s.is_terminal() && (asked.is_empty() || asked.contains(s))).collect();
    if dry_run {
        let n = if query.statuses.is_empty() { 0 } else { st.client.count(query).await? };
        return Ok((StatusCode::OK, Json(json!({ "dryRun": true, "instancesMatched": n }))).into_response());
    }
    let deleted = if query.statuses.is_empty() { 0 } else { st.client.purge_where(query).await? };
    Ok((StatusCode::OK, Json(json!({ "instancesDeleted": deleted }))).into_response())
}

/// `POST /instances/terminate?...&reason=&dryRun=`: terminate the live instances matching the
/// filter (statuses Pending, Running, Suspended, ContinuedAsNew; all four if none is given).
pub(crate) async fn terminate_many(State(st): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult {
    if q.top.is_some() || q.continuation_token.is_some() || q.show_input.is_some() {
        return Err(ApiError::bad_request(
            "BadQuery",
            "a bulk terminate takes runtimeStatus, createdTimeFrom, createdTimeTo, name, instanceIdPrefix, reason and dryRun only",
        ));
    }
    let dry_run = render::flag("dryRun", &q.dry_run)?;
    let query = durable_runtime::client::live_query(q.filter()?)
        .map_err(|e| ApiError::bad_request("BadQuery", e.to_string()))?;
    if dry_run {
        let n = st.client.count(query).await?;
        return Ok((StatusCode::OK, Json(json!({ "dryRun": true, "instancesMatched": n }))).into_response());
    }
    let n = st.client.terminate_where(query, q.reason.as_deref().unwrap_or("")).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "instancesTerminated": n }))).into_response())
}

/// `POST /instances/{id}/raiseEvent/{event}`.
pub(crate) async fn raise_event(
    State(st): State<AppState>,
    P((id, event)): P<(String, String)>,
    JsonBody(data): JsonBody,
) -> ApiResult {
    orchestration_id(&id)?;
    st.client.raise_event(&id, &event, data).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
pub(crate) struct ReasonQuery {
    reason: Option<String>,
}

macro_rules! control {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        pub(crate) async fn $name(State(st): State<AppState>, P(id): P<String>, Q(q): Q<ReasonQuery>) -> ApiResult {
            orchestration_id(&id)?;
            st.client.$name(&id, q.reason.as_deref().unwrap_or("")).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
    };
}

#[derive(Deserialize)]
pub(crate) struct TerminateQuery {
    reason: Option<String>,
    /// Also every sub-orchestration still running, recursively.
    #[serde(default)]
    recursive: bool,
}

/// `POST /instances/{id}/terminate?reason=&recursive=true`.
pub(crate) async fn terminate(State(st): State<AppState>, P(id): P<String>, Q(q): Q<TerminateQuery>) -> ApiResult {
    orchestration_id(&id)?;
    let reason = q.reason.as_deref().unwrap_or("");
    if q.recursive {
        let n = st.client.terminate_recursive(&id, reason).await?;
        return Ok((StatusCode::ACCEPTED, Json(json!({ "instancesTerminated": n }))).into_response());
    }
    st.client.terminate(&id, reason).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
control!(suspend, "`POST /instances/{id}/suspend?reason=`.");
control!(resume, "`POST /instances/{id}/resume?reason=`.");
control!(rewind, "`POST /instances/{id}/rewind?reason=`.");

fn check_entity_name(name: &str) -> Result<(), ApiError> {
    if name.contains('@') {
        return Err(ApiError::bad_request("InvalidEntityId", format!("entity name {name:?} must not contain `@`")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntityQuery {
    show_metadata: Option<String>,
}

/// `GET /entities/{name}/{key}`: the state, or with `showMetadata=true` the whole record.
pub(crate) async fn entity(
    State(st): State<AppState>,
    P((name, key)): P<(String, String)>,
    Q(q): Q<EntityQuery>,
) -> ApiResult {
    let meta = render::flag("showMetadata", &q.show_metadata)?;
    check_entity_name(&name)?;
    match st.client.entity(&name, &key).await? {
        Some(e) if e.state.is_some() => Ok(if meta {
            Json(render::entity(&e)).into_response()
        } else {
            Json(e.state.as_deref().map(render::payload)).into_response()
        }),
        Some(e) if meta => Err(ApiError::not_found("EntityNotFound", format!("entity {name}/{key} has no state"))
            .with("lastError", json!(e.last_error))),
        _ => Err(ApiError::not_found(
            "EntityNotFound",
            format!("entity {name}/{key} does not exist (it is created by its first operation)"),
        )),
    }
}

/// `GET /entities/{name}/{key}/history`: the operations the entity's journal keeps, oldest
/// first.
pub(crate) async fn entity_history(State(st): State<AppState>, P((name, key)): P<(String, String)>) -> ApiResult {
    check_entity_name(&name)?;
    let journal = match st.client.entity_journal(&name, &key).await {
        Err(Error::InstanceNotFound(_)) => {
            return Err(ApiError::not_found(
                "EntityNotFound",
                format!("entity {name}/{key} does not exist (it is created by its first operation)"),
            ));
        }
        r => r?,
    };
    let operations: Vec<Value> = journal.iter().map(render::journal_entry).collect();
    Ok(Json(json!({ "name": name, "key": key, "operations": operations })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SignalQuery {
    op: Option<String>,
}

/// `POST /entities/{name}/{key}?op=OP`: signal an operation (one-way).
pub(crate) async fn signal_entity(
    State(st): State<AppState>,
    P((name, key)): P<(String, String)>,
    Q(q): Q<SignalQuery>,
    base: Base,
    JsonBody(input): JsonBody,
) -> ApiResult {
    let op = q.op.filter(|o| !o.is_empty()).ok_or_else(|| {
        ApiError::bad_request("BadQuery", "op is required: the name of the entity operation to signal (`?op=add`)")
    })?;
    check_entity_name(&name)?;
    if let Some(known) = &st.config.entities
        && !known.contains(&name)
    {
        return Err(ApiError::not_found(
            "UnknownEntity",
            format!("unknown entity {name:?}: the workers register {}", known.join(", ")),
        )
        .with("known", json!(known)));
    }
    st.client.signal_entity_by_name(&name, &key, &op, input).await?;
    let url = format!("{}/entities/{}/{}", base.0, seg(&name), seg(&key));
    Ok((StatusCode::ACCEPTED, [location(&url)]).into_response())
}

/// `DELETE /entities/{name}/{key}`.
pub(crate) async fn purge_entity(State(st): State<AppState>, P((name, key)): P<(String, String)>) -> ApiResult {
    check_entity_name(&name)?;
    if st.client.purge_entity(&name, &key).await? {
        Ok((StatusCode::OK, Json(json!({ "entitiesDeleted": 1 }))).into_response())
    } else {
        Err(ApiError::not_found("EntityNotFound", format!("entity {name}/{key} does not exist")))
    }
}

#[derive(Deserialize)]
pub(crate) struct EntitiesQuery {
    name: Option<String>,
    top: Option<String>,
}

/// `GET /entities?name=&top=`.
pub(crate) async fn list_entities(State(st): State<AppState>, Q(q): Q<EntitiesQuery>) -> ApiResult {
    let top = parse_top(&q.top)?;
    if let Some(n) = &q.name {
        check_entity_name(n)?;
    }
    let list = st.client.list_entities(q.name.as_deref(), top).await?;
    Ok(Json(json!({ "entities": list.iter().map(render::entity).collect::<Vec<_>>() })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DeadLettersQuery {
    top: Option<String>,
}

/// `GET /dead-letters?top=`: entries the backend could not read, newest first.
pub(crate) async fn dead_letters(State(st): State<AppState>, Q(q): Q<DeadLettersQuery>) -> ApiResult {
    let top = parse_top(&q.top)?;
    let list = st.client.dead_letters(top).await?;
    Ok(Json(json!({ "deadLetters": list.iter().map(render::dead_letter).collect::<Vec<_>>() })).into_response())
}

/// `GET /openapi.json`.
pub(crate) async fn openapi_json(State(st): State<AppState>) -> Response {
    Json(crate::openapi::document(&st.config)).into_response()
}

/// `GET /healthz`: 200 when the backend answers.
pub(crate) async fn healthz(State(st): State<AppState>) -> ApiResult {
    st.client.status("healthz").await?;
    Ok(Json(json!({ "status": "ok" })).into_response())
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(st): State<AppState>) -> ApiResult {
    let mut out = String::new();
    st.metrics.render(&mut out);
    // The workers of this process (if it runs any), and the backend's queues.
    durable_runtime::metrics::render(&mut out, st.client.queue_depths().await?);
    // Instances by status, from `list` (the engine exposes no counters of its own yet).
    let mut counts = [0u64; RuntimeStatus::ALL.len()];
    let mut entities = 0u64;
    let mut query = InstanceQuery::new().with_limit(1000);
    loop {
        let page = st.client.list(query.clone()).await?;
        for s in &page.instances {
            if is_entity_instance(&s.instance_id) {
                entities += 1;
            } else if let Some(i) = RuntimeStatus::ALL.iter().position(|r| *r == s.runtime_status) {
                counts[i] += 1;
            }
        }
        match page.continuation {
            Some(c) => query = query.with_continuation(c),
            None => break,
        }
    }
    out.push_str("# HELP durable_instances Orchestration instances in the backend, by runtime status.\n");
    out.push_str("# TYPE durable_instances gauge\n");
    for (r, n) in RuntimeStatus::ALL.iter().zip(counts) {
        out.push_str(&format!("durable_instances{{status=\"{r}\"}} {n}\n"));
    }
    out.push_str("# HELP durable_entities Entity records in the backend.\n# TYPE durable_entities gauge\n");
    out.push_str(&format!("durable_entities {entities}\n"));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}

/// Unknown route: a 404 JSON error.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found("NoRoute", format!("no route for {method} {}; see GET /openapi.json", uri.path()))
}

/// Known route, wrong method: a 405 JSON error.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{} does not take {method}; see GET /openapi.json", uri.path()),
    )
}

/// Bearer-token check, when a token is configured.
pub(crate) async fn auth(State(st): State<AppState>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &st.config.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let ok = given.is_some_and(|g| {
            g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        });
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this API needs `Authorization: Bearer <token>` with the configured token",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Count and time every request by route.
pub(crate) async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    st.metrics.record(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// The body of `POST /schedules/{id}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateSchedule {
    cron: String,
    orchestrator: String,
    #[serde(default)]
    input: Value,
    timezone: Option<String>,
    overlap: Option<String>,
    catch_up: Option<String>,
    catch_up_window_secs: Option<u64>,
}

fn schedule_not_found(id: &str) -> ApiError {
    ApiError::not_found("ScheduleNotFound", format!("no schedule with id {id:?}"))
}

/// `GET /schedules`: every schedule, by id.
pub(crate) async fn list_schedules(State(st): State<AppState>) -> ApiResult {
    let list = st.client.list_schedules().await?;
    let v: Vec<Value> = list.iter().map(render::schedule).collect();
    Ok(Json(json!({ "schedules": v })).into_response())
}

/// `GET /schedules/{id}`.
pub(crate) async fn get_schedule(State(st): State<AppState>, P(id): P<String>) -> ApiResult {
    match st.client.schedule_info(&id).await? {
        Some(s) => Ok(Json(render::schedule(&s)).into_response()),
        None => Err(schedule_not_found(&id)),
    }
}

/// `POST /schedules/{id}`: create a schedule.
pub(crate) async fn create_schedule(
    State(st): State<AppState>,
    P(id): P<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: CreateSchedule = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(
            "BadBody",
            format!("a schedule is {{\"cron\", \"orchestrator\", \"input\"?, \"timezone\"?, \"overlap\"?, \"catchUp\"?, \"catchUpWindowSecs\"?}}: {e}"),
        )
    })?;
    let schedule = render::parse_schedule(
        &req.cron,
        req.timezone.as_deref(),
        req.overlap.as_deref(),
        req.catch_up.as_deref(),
        req.catch_up_window_secs,
    )?;
    if let Some(known) = &st.config.orchestrators
        && !known.contains(&req.orchestrator)
    {
        return Err(ApiError::not_found(
            "UnknownOrchestrator",
            format!("unknown orchestrator {:?}: the workers register {}", req.orchestrator, known.join(", ")),
        )
        .with("known", json!(known)));
    }
    st.client.schedule_by_name(id.clone(), schedule, &req.orchestrator, req.input).await?;
    match st.client.schedule_info(&id).await? {
        Some(s) => Ok((StatusCode::CREATED, Json(render::schedule(&s))).into_response()),
        None => Err(schedule_not_found(&id)),
    }
}

/// `POST /schedules/{id}/pause`.
pub(crate) async fn pause_schedule(State(st): State<AppState>, P(id): P<String>) -> ApiResult {
    st.client.pause_schedule(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "action": "pause", "accepted": true }))).into_response())
}

/// `POST /schedules/{id}/resume`.
pub(crate) async fn resume_schedule(State(st): State<AppState>, P(id): P<String>) -> ApiResult {
    st.client.resume_schedule(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "action": "resume", "accepted": true }))).into_response())
}

/// `DELETE /schedules/{id}`.
pub(crate) async fn delete_schedule(State(st): State<AppState>, P(id): P<String>) -> ApiResult {
    st.client.delete_schedule(&id).await?;
    Ok((StatusCode::OK, Json(json!({ "schedulesDeleted": 1 }))).into_response())
}
