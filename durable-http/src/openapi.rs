//! The OpenAPI 3 document of the API (`GET /openapi.json`), built from the table of routes
//! below, which a test checks against the router.

use crate::HttpConfig;
use serde_json::{Map, Value, json};

/// Every route of [`crate::router`]: (method, path). A test checks that each is in
/// [`document`] and answered by the router, and that the document has no other.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/orchestrations/versions"),
    ("post", "/orchestrations/versions"),
    ("post", "/orchestrations/{name}"),
    ("get", "/instances"),
    ("delete", "/instances"),
    ("get", "/instances/{id}"),
    ("delete", "/instances/{id}"),
    ("post", "/instances/{id}/raiseEvent/{event}"),
    ("post", "/instances/{id}/terminate"),
    ("post", "/instances/terminate"),
    ("post", "/instances/{id}/suspend"),
    ("post", "/instances/{id}/resume"),
    ("post", "/instances/{id}/rewind"),
    ("get", "/entities"),
    ("get", "/entities/{name}/{key}"),
    ("post", "/entities/{name}/{key}"),
    ("delete", "/entities/{name}/{key}"),
    ("get", "/entities/{name}/{key}/history"),
    ("get", "/schedules"),
    ("get", "/schedules/{id}"),
    ("post", "/schedules/{id}"),
    ("delete", "/schedules/{id}"),
    ("post", "/schedules/{id}/pause"),
    ("post", "/schedules/{id}/resume"),
    ("get", "/dead-letters"),
    ("get", "/openapi.json"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

/// Control characters (`char::is_control`), as a regex character-class body.
const CONTROL: &str = "\\x00-\\x1f\\x7f-\\x9f";

fn entity_name(known: Option<&[String]>) -> Value {
    if let Some(names) = known {
        return json!({ "name": "name", "in": "path", "required": true, "description": "The entity name.",
            "schema": { "type": "string", "enum": names } });
    }
    json!({ "name": "name", "in": "path", "required": true, "description": "The entity name (no `@`, no control characters).",
        "schema": { "type": "string", "minLength": 1, "pattern": format!("^[^@{CONTROL}]+$") } })
}

fn entity_key() -> Value {
    json!({ "name": "key", "in": "path", "required": true,
        "description": "The entity key (no control characters; name and key together at most 254 bytes).",
        "schema": { "type": "string", "minLength": 1, "pattern": format!("^[^{CONTROL}]+$") } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn flag(name: &str, description: &str) -> Value {
    query(name, description, json!({ "type": "boolean" }))
}

fn reason() -> Value {
    query("reason", "Why (recorded in the history).", json!({ "type": "string" }))
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error(description: &str) -> Value {
    body(description, schema_ref("Error"))
}

fn empty(description: &str) -> Value {
    json!({ "description": description })
}

fn with_location(mut response: Value) -> Value {
    response["headers"] = json!({ "Location": { "description": "The status URL.", "schema": { "type": "string" } } });
    response
}

/// The operations on an instance, which a started instance's id links to.
const INSTANCE_LINKS: &[&str] = &[
    "getInstance",
    "purgeInstance",
    "raiseEvent",
    "terminateInstance",
    "suspendInstance",
    "resumeInstance",
    "rewindInstance",
];

/// OpenAPI links from a response to the operations taking its instance id.
fn links(mut response: Value, operations: &[&str], id: &str) -> Value {
    let l: Map<String, Value> = operations
        .iter()
        .map(|op| (op.to_string(), json!({ "operationId": op, "parameters": { "id": id } })))
        .collect();
    response["links"] = Value::Object(l);
    response
}

fn entity_links(mut response: Value) -> Value {
    let params = json!({ "name": "$request.path.name", "key": "$request.path.key" });
    response["links"] = json!({
        "getEntity": { "operationId": "getEntity", "parameters": params },
        "purgeEntity": { "operationId": "purgeEntity", "parameters": params },
    });
    response
}

fn json_request(description: &str) -> Value {
    json!({
        "required": false,
        "description": description,
        "content": { "application/json": { "schema": {} } }
    })
}

/// The error responses every route can give besides its own.
fn common_errors(responses: &mut Map<String, Value>) {
    responses
        .insert("401".into(), error("A token is configured and the request lacks `Authorization: Bearer <token>`."));
    responses.insert("503".into(), error("The backend is unavailable."));
}

fn operation(
    id: &str,
    summary: &str,
    params: Vec<Value>,
    request: Option<Value>,
    responses: Vec<(&str, Value)>,
) -> Value {
    let mut r: Map<String, Value> = responses.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    common_errors(&mut r);
    let mut op = json!({ "operationId": id, "summary": summary, "parameters": params, "responses": r });
    if let Some(b) = request {
        op["requestBody"] = b;
    }
    op
}

fn operation_for(cfg: &HttpConfig, method: &str, path: &str) -> Value {
    let id_param = || path_param("id", "The instance id.");
    let list_filters = || {
        vec![
            json!({
                "name": "runtimeStatus",
                "in": "query",
                "required": false,
                "description": "Comma-separated statuses (any case): Pending, Running, Suspended, Completed, Failed, Terminated, ContinuedAsNew.",
                "style": "form",
                "explode": false,
                "schema": { "type": "array", "items": schema_ref("RuntimeStatus") }
            }),
            query(
                "createdTimeFrom",
                "Created at or after (RFC 3339).",
                json!({ "type": "string", "format": "date-time" }),
            ),
            query("createdTimeTo", "Created before (RFC 3339).", json!({ "type": "string", "format": "date-time" })),
            query("instanceIdPrefix", "Only instances whose id starts with this.", json!({ "type": "string" })),
            query("name", "Only instances of this orchestrator.", json!({ "type": "string" })),
        ]
    };
    let control = |id: &str, what: &str, conflict: &str| {
        operation(
            id,
            what,
            vec![id_param(), reason()],
            None,
            vec![
                ("202", empty("Accepted: the instance will act on it.")),
                ("400", error("Bad query string.")),
                ("404", error("No such instance.")),
                ("409", error(conflict)),
            ],
        )
    };
    // Starting an orchestration: by a name in the path, or the one named `versions` (whose path
    // is also `GET /orchestrations/versions`).
    let start = |id: &str, summary: &str, mut params: Vec<Value>| {
        params.push(query(
            "instanceId",
            "The instance id (default: a random one): 1 to 256 bytes, no control characters, not starting with `@` (entities).",
            json!({ "type": "string", "minLength": 1, "pattern": format!("^[^@{CONTROL}][^{CONTROL}]*$") }),
        ));
        operation(
            id,
            summary,
            params,
            Some(json_request("The orchestrator's input.")),
            vec![
                (
                    "202",
                    links(
                        with_location(body("Started.", schema_ref("ManagementUrls"))),
                        INSTANCE_LINKS,
                        "$response.body#/id",
                    ),
                ),
                ("400", error("Bad JSON, bad instance id, or an input that does not serialize.")),
                ("404", error("An orchestrator name not among the configured ones.")),
                ("409", error("A live instance already has this id.")),
                ("413", error("The body is over the limit.")),
            ],
        )
    };
    match (method, path) {
        ("get", "/orchestrations/versions") => operation(
            "listVersions",
            "Per orchestrator name and version: the instances in flight (not finished), how many of them are blocked (no registered code can run them now; their status says why), and where they are suspended.",
            vec![],
            None,
            vec![(
                "200",
                body(
                    "Sorted by name, then version; only versions with instances in flight.",
                    json!({ "type": "array", "items": schema_ref("VersionSummary") }),
                ),
            )],
        ),
        ("post", "/orchestrations/versions") => start(
            "startVersionsOrchestration",
            "Start the orchestrator named `versions` (this path is also GET /orchestrations/versions). The body (JSON, empty = null) is its input.",
            vec![],
        ),
        ("post", "/orchestrations/{name}") => start(
            "startOrchestration",
            "Start an orchestration. The body (JSON, empty = null) is its input.",
            vec![match &cfg.orchestrators {
                Some(names) => json!({ "name": "name", "in": "path", "required": true,
                    "description": "The orchestrator's registered name.", "schema": { "type": "string", "enum": names } }),
                None => path_param("name", "The orchestrator's registered name."),
            }],
        ),
        ("get", "/instances") => {
            let mut params = list_filters();
            params.push(query(
                "top",
                "Page size, 1 to 1000 (default 100).",
                json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
            ));
            params.push(query("continuationToken", "The token of the previous page.", json!({ "type": "string" })));
            params.push(flag("showInput", "Include each instance's input."));
            let mut ok = body("One page of instances (entities are not listed here).", schema_ref("InstanceList"));
            ok["headers"] = json!({ "x-ms-continuation-token": { "description": "The next page's token, if any.", "schema": { "type": "string" } } });
            operation(
                "listInstances",
                "List orchestration instances.",
                params,
                None,
                vec![("200", ok), ("400", error("Bad query string or continuation token."))],
            )
        }
        ("delete", "/instances") => operation(
            "purgeInstances",
            "Purge the finished instances that match the filter; with dryRun=true only count them (`{\"dryRun\": true, \"instancesMatched\": n}`).",
            [list_filters(), vec![flag("dryRun", "Only count the instances it would purge.")]].concat(),
            None,
            vec![
                ("200", body("How many were deleted (or would be).", schema_ref("PurgeResult"))),
                ("400", error("Bad query string.")),
            ],
        ),
        ("post", "/instances/terminate") => operation(
            "terminateInstances",
            "Terminate the live instances (Pending, Running, Suspended, ContinuedAsNew; all four unless runtimeStatus says) that match the filter; with dryRun=true only count them.",
            [list_filters(), vec![reason(), flag("dryRun", "Only count the instances it would terminate.")]].concat(),
            None,
            vec![
                (
                    "202",
                    body(
                        "How many were terminated.",
                        json!({ "type": "object", "properties": { "instancesTerminated": { "type": "integer" } } }),
                    ),
                ),
                (
                    "200",
                    body(
                        "Dry run: how many match.",
                        json!({ "type": "object", "properties": { "dryRun": { "type": "boolean" }, "instancesMatched": { "type": "integer" } } }),
                    ),
                ),
                ("400", error("Bad query string, or a finished status.")),
            ],
        ),
        ("get", "/instances/{id}") => {
            let status = || schema_ref("InstanceStatus");
            operation(
                "getInstance",
                "An instance's status.",
                vec![
                    id_param(),
                    flag("showHistory", "Include the history."),
                    flag("showInput", "Include the input."),
                    flag(
                        "showState",
                        "Include the live state of a suspended orchestration (program counter and locals).",
                    ),
                ],
                None,
                vec![
                    ("200", body("Completed.", status())),
                    ("202", with_location(body("Pending, Running, Suspended or ContinuedAsNew.", status()))),
                    (
                        "400",
                        body(
                            "Failed or Terminated (the body is the status), or a bad query string (an error).",
                            json!({ "oneOf": [status(), schema_ref("Error")] }),
                        ),
                    ),
                    ("404", error("No such instance.")),
                ],
            )
        }
        ("delete", "/instances/{id}") => operation(
            "purgeInstance",
            "Delete a finished instance and its history.",
            vec![id_param()],
            None,
            vec![
                ("200", body("Deleted.", schema_ref("PurgeResult"))),
                ("404", error("No such instance.")),
                ("409", error("The instance has not finished.")),
            ],
        ),
        ("post", "/instances/{id}/raiseEvent/{event}") => operation(
            "raiseEvent",
            "Raise an external event on an instance; the body (JSON, empty = null) is its data.",
            vec![id_param(), path_param("event", "The event name.")],
            Some(json_request("The event data.")),
            vec![
                ("202", empty("Accepted.")),
                ("400", error("Bad JSON.")),
                ("404", error("No such instance.")),
                ("409", error("The instance has finished.")),
                ("413", error("The body is over the limit.")),
            ],
        ),
        ("post", "/instances/{id}/terminate") => operation(
            "terminateInstance",
            "Terminate an instance; with `recursive=true` also every sub-orchestration of it still running, recursively (the answer then counts them: `{\"instancesTerminated\": n}`).",
            vec![
                id_param(),
                reason(),
                query(
                    "recursive",
                    "Also terminate the instance's sub-orchestrations still running, and theirs.",
                    json!({ "type": "boolean", "default": false }),
                ),
            ],
            None,
            vec![
                ("202", empty("Accepted: the instance will act on it.")),
                ("400", error("Bad query string.")),
                ("404", error("No such instance.")),
                ("409", error("The instance has finished.")),
            ],
        ),
        ("post", "/instances/{id}/suspend") => {
            control("suspendInstance", "Suspend an instance.", "The instance has finished.")
        }
        ("post", "/instances/{id}/resume") => {
            control("resumeInstance", "Resume a suspended instance.", "The instance has finished.")
        }
        ("post", "/instances/{id}/rewind") => control(
            "rewindInstance",
            "Rewind a failed instance: its failed tasks run again.",
            "The instance has not failed.",
        ),
        ("get", "/dead-letters") => operation(
            "listDeadLetters",
            "Entries the backend could not read (a message variant from a newer release during a rolling upgrade, say), newest first: each was moved out of its stream with the reason, so it is neither lost nor read again. Always empty on the Memory backend.",
            vec![query(
                "top",
                "At most this many, 1 to 1000 (default 100).",
                json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
            )],
            None,
            vec![("200", body("The dead letters.", schema_ref("DeadLetterList"))), ("400", error("Bad query string."))],
        ),
        ("get", "/entities") => operation(
            "listEntities",
            "List entities that have state.",
            vec![
                query("name", "Only entities of this name.", json!({ "type": "string", "pattern": "^[^@]*$" })),
                query(
                    "top",
                    "At most this many, 1 to 1000 (default 100).",
                    json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
                ),
            ],
            None,
            vec![("200", body("The entities.", schema_ref("EntityList"))), ("400", error("Bad query string."))],
        ),
        ("get", "/entities/{name}/{key}") => operation(
            "getEntity",
            "An entity's state (JSON), or with showMetadata=true its record.",
            vec![
                entity_name(cfg.entities.as_deref()),
                entity_key(),
                flag("showMetadata", "Answer the whole record instead of the state."),
            ],
            None,
            vec![
                ("200", body("The state (any JSON), or the record.", json!({}))),
                ("400", error("Bad entity name or query string.")),
                ("404", error("The entity does not exist.")),
            ],
        ),
        ("post", "/entities/{name}/{key}") => operation(
            "signalEntity",
            "Signal an entity operation (one-way); the body (JSON, empty = null) is its input.",
            vec![
                entity_name(cfg.entities.as_deref()),
                entity_key(),
                json!({ "name": "op", "in": "query", "required": true, "description": "The operation.", "schema": { "type": "string", "minLength": 1 } }),
            ],
            Some(json_request("The operation's input.")),
            vec![
                ("202", entity_links(with_location(empty("Accepted: the operation will run.")))),
                ("400", error("Bad JSON, missing op, or a bad entity name or key.")),
                ("404", error("An entity name not among the configured ones.")),
                ("413", error("The body is over the limit.")),
            ],
        ),
        ("get", "/entities/{name}/{key}/history") => operation(
            "getEntityHistory",
            "The last operations the entity applied, oldest first (its journal; the workers' `entity_journal` setting says how many, default 20): what changed its state, when, sent by whom, with what result.",
            vec![entity_name(cfg.entities.as_deref()), entity_key()],
            None,
            vec![
                (
                    "200",
                    body(
                        "The journal.",
                        json!({
                            "type": "object",
                            "properties": {
                                "name": { "type": "string" },
                                "key": { "type": "string" },
                                "operations": { "type": "array", "items": {
                                    "type": "object",
                                    "properties": {
                                        "time": { "type": "string", "format": "date-time" },
                                        "operation": { "type": "string" },
                                        "input": {},
                                        "sender": { "type": ["string", "null"], "description": "The orchestration or entity (`@name@key`) that sent it; null for a client." },
                                        "result": {},
                                        "error": { "type": ["string", "null"] }
                                    }
                                } }
                            }
                        }),
                    ),
                ),
                ("400", error("Bad entity name.")),
                ("404", error("The entity does not exist.")),
            ],
        ),
        ("delete", "/entities/{name}/{key}") => operation(
            "purgeEntity",
            "Delete an entity and its state.",
            vec![entity_name(cfg.entities.as_deref()), entity_key()],
            None,
            vec![
                (
                    "200",
                    body(
                        "Deleted.",
                        json!({ "type": "object", "properties": { "entitiesDeleted": { "type": "integer" } } }),
                    ),
                ),
                ("400", error("Bad entity name.")),
                ("404", error("The entity does not exist.")),
                ("409", error("The entity is busy; try again.")),
            ],
        ),
        ("get", "/schedules") => operation(
            "listSchedules",
            "Every schedule, by id: its cron expression, time zone, policies, orchestrator and input, whether it is paused, its next fire time and last run.",
            vec![],
            None,
            vec![(
                "200",
                body(
                    "The schedules.",
                    json!({ "type": "object", "properties": { "schedules": { "type": "array", "items": schema_ref("Schedule") } } }),
                ),
            )],
        ),
        ("get", "/schedules/{id}") => operation(
            "getSchedule",
            "A schedule.",
            vec![path_param("id", "The schedule id.")],
            None,
            vec![("200", body("The schedule.", schema_ref("Schedule"))), ("404", error("No such schedule."))],
        ),
        ("post", "/schedules/{id}") => operation(
            "createSchedule",
            "Create a schedule: an instance of `orchestrator` with `input` at each fire time of `cron` (5 fields, or 6 with seconds first) in `timezone` (IANA, default UTC), each run with instance id `{id}@{fire time, RFC 3339 UTC}`. `overlap`: skip (default), buffer-one, allow-all. `catchUp`: run-last (default), skip-missed, run-all (with `catchUpWindowSecs`).",
            vec![path_param("id", "The schedule id (1 to 200 bytes, no control characters).")],
            Some(json!({
                "required": true,
                "description": "The schedule.",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["cron", "orchestrator"],
                    "additionalProperties": false,
                    "properties": {
                        "cron": { "type": "string" },
                        "orchestrator": { "type": "string" },
                        "input": {},
                        "timezone": { "type": "string" },
                        "overlap": { "type": "string", "enum": ["skip", "buffer-one", "allow-all"] },
                        "catchUp": { "type": "string", "enum": ["run-last", "skip-missed", "run-all"] },
                        "catchUpWindowSecs": { "type": "integer", "minimum": 0 }
                    }
                } } }
            })),
            vec![
                ("201", body("Created.", schema_ref("Schedule"))),
                (
                    "400",
                    error(
                        "Bad JSON or body, a bad id, or an invalid cron expression, time zone or policy (the message names the field).",
                    ),
                ),
                ("404", error("An orchestrator name not among the configured ones.")),
                ("409", error("A schedule with this id exists.")),
                ("413", error("The body is over the limit.")),
            ],
        ),
        ("delete", "/schedules/{id}") => operation(
            "deleteSchedule",
            "Delete a schedule: no run starts any more (runs in flight go on) and the id is free again.",
            vec![path_param("id", "The schedule id.")],
            None,
            vec![
                (
                    "200",
                    body(
                        "Deleted.",
                        json!({ "type": "object", "properties": { "schedulesDeleted": { "type": "integer" } } }),
                    ),
                ),
                ("404", error("No such schedule.")),
            ],
        ),
        ("post", "/schedules/{id}/pause") => operation(
            "pauseSchedule",
            "Pause a schedule: no run starts until it is resumed; then the catch-up policy applies to the fire times missed.",
            vec![path_param("id", "The schedule id.")],
            None,
            vec![
                ("202", empty("Accepted.")),
                ("404", error("No such schedule.")),
                ("409", error("The schedule has stopped (failed).")),
            ],
        ),
        ("post", "/schedules/{id}/resume") => operation(
            "resumeSchedule",
            "Resume a paused schedule.",
            vec![path_param("id", "The schedule id.")],
            None,
            vec![
                ("202", empty("Accepted.")),
                ("404", error("No such schedule.")),
                ("409", error("The schedule has stopped (failed).")),
            ],
        ),
        ("get", "/openapi.json") => operation(
            "openapi",
            "This document.",
            vec![],
            None,
            vec![("200", body("The OpenAPI document.", json!({ "type": "object" })))],
        ),
        ("get", "/healthz") => operation(
            "healthz",
            "Liveness: 200 when the backend answers.",
            vec![],
            None,
            vec![(
                "200",
                body("Healthy.", json!({ "type": "object", "properties": { "status": { "type": "string" } } })),
            )],
        ),
        ("get", "/metrics") => operation(
            "metrics",
            "Prometheus metrics: HTTP requests and latencies by route; steps, activities, failures and latencies of the workers in this process; queue depths of the backend; instances by status.",
            vec![],
            None,
            vec![(
                "200",
                json!({ "description": "Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } }),
            )],
        ),
        _ => json!({}),
    }
}

fn schemas() -> Value {
    let nullable_string = json!({ "type": "string", "nullable": true });
    json!({
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": { "error": { "type": "string" }, "code": { "type": "string" } }
        },
        "ManagementUrls": {
            "type": "object",
            "required": ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "suspendPostUri", "resumePostUri", "rewindPostUri", "purgeHistoryDeleteUri"],
            "properties": {
                "id": { "type": "string" },
                "statusQueryGetUri": { "type": "string" },
                "sendEventPostUri": { "type": "string" },
                "terminatePostUri": { "type": "string" },
                "suspendPostUri": { "type": "string" },
                "resumePostUri": { "type": "string" },
                "rewindPostUri": { "type": "string" },
                "purgeHistoryDeleteUri": { "type": "string" }
            }
        },
        "Schedule": {
            "type": "object",
            "required": ["id", "cron", "timezone", "orchestrator", "overlap", "catchUp", "paused", "runtimeStatus", "runsStarted", "skipped"],
            "properties": {
                "id": { "type": "string" },
                "cron": { "type": "string" },
                "timezone": { "type": "string" },
                "orchestrator": { "type": "string" },
                "input": {},
                "overlap": { "type": "string", "enum": ["skip", "buffer-one", "allow-all"] },
                "catchUp": { "type": "string", "enum": ["run-last", "skip-missed", "run-all"] },
                "catchUpWindowSecs": { "type": "integer", "nullable": true },
                "paused": { "type": "boolean" },
                "runtimeStatus": { "$ref": "#/components/schemas/RuntimeStatus" },
                "nextFire": { "type": "string", "format": "date-time", "nullable": true },
                "lastRun": nullable_string,
                "running": nullable_string,
                "runsStarted": { "type": "integer" },
                "skipped": { "type": "integer" },
                "error": nullable_string
            }
        },
        "RuntimeStatus": {
            "type": "string",
            "enum": ["Pending", "Running", "Suspended", "Completed", "Failed", "Terminated", "ContinuedAsNew"]
        },
        "InstanceStatus": {
            "type": "object",
            "required": ["name", "instanceId", "runtimeStatus", "createdTime", "lastUpdatedTime", "version", "blocked"],
            "properties": {
                "name": { "type": "string" },
                "instanceId": { "type": "string" },
                "runtimeStatus": schema_ref("RuntimeStatus"),
                "input": { "description": "The input (with showInput=true)." },
                "output": { "description": "The output, once completed." },
                "customStatus": { "description": "Set by the orchestrator." },
                "createdTime": { "type": "string", "format": "date-time" },
                "lastUpdatedTime": { "type": "string", "format": "date-time" },
                "error": nullable_string,
                "reason": nullable_string,
                "parentInstanceId": nullable_string,
                "version": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "The orchestrator version it runs on (`#[orchestrator(version = N)]`, default 1); 0 for an instance started by name that has not run yet."
                },
                "blocked": {
                    "type": "boolean",
                    "description": "No registered code can run it now (an incompatible change, an unregistered version): `reason` says why and what to deploy; it resumes once a worker runs matching code."
                },
                "history": { "type": "array", "items": schema_ref("HistoryEvent"), "description": "With showHistory=true." },
                "state": { "description": "With showState=true: `{at, pc, locals}` of a suspended orchestration, or null." }
            }
        },
        "DeadLetterList": {
            "type": "object",
            "required": ["deadLetters"],
            "properties": { "deadLetters": { "type": "array", "items": schema_ref("DeadLetter") } }
        },
        "DeadLetter": {
            "type": "object",
            "required": ["id", "stream", "entryId", "partition", "reason", "time", "fields"],
            "properties": {
                "id": { "type": "string", "description": "Its id in the dead-letter stream." },
                "stream": { "type": "string", "description": "The stream it came from (for Redis, the key, e.g. `{durable:p3}:ctl`)." },
                "entryId": { "type": "string", "description": "Its id in that stream." },
                "partition": { "type": "integer", "minimum": 0, "description": "The partition of that stream." },
                "reason": { "type": "string", "description": "Why it could not be read (the decode error)." },
                "time": { "type": "string", "format": "date-time", "description": "When it was moved." },
                "fields": { "type": "object", "additionalProperties": { "type": "string" }, "description": "The entry's fields as they were." }
            }
        },
        "VersionSummary": {
            "type": "object",
            "required": ["name", "version", "inFlight", "blocked", "suspendedAt"],
            "properties": {
                "name": { "type": "string", "description": "The orchestrator's name." },
                "version": { "type": "integer", "minimum": 0, "description": "Its version (0: started by name, not yet run)." },
                "inFlight": { "type": "integer", "minimum": 0, "description": "Instances not finished (Pending, Running, Suspended, ContinuedAsNew)." },
                "blocked": { "type": "integer", "minimum": 0, "description": "Of those, how many no registered code can run now." },
                "suspendedAt": {
                    "type": "object",
                    "additionalProperties": { "type": "integer", "minimum": 0 },
                    "description": "Suspension point (the await's source text and line, e.g. `ctx.wait_for_event(\"go\") (line 12)`) → how many instances wait there."
                }
            }
        },
        "HistoryEvent": {
            "type": "object",
            "required": ["seq", "timestamp", "eventType"],
            "properties": {
                "seq": { "type": "integer" },
                "timestamp": { "type": "string", "format": "date-time" },
                "eventType": { "type": "string" }
            }
        },
        "InstanceList": {
            "type": "object",
            "required": ["instances", "continuationToken"],
            "properties": {
                "instances": { "type": "array", "items": schema_ref("InstanceStatus") },
                "continuationToken": nullable_string
            }
        },
        "PurgeResult": {
            "type": "object",
            "required": ["instancesDeleted"],
            "properties": { "instancesDeleted": { "type": "integer" } }
        },
        "Entity": {
            "type": "object",
            "required": ["name", "key", "lastModifiedTime"],
            "properties": {
                "name": { "type": "string" },
                "key": { "type": "string" },
                "state": {},
                "lastError": nullable_string,
                "lastModifiedTime": { "type": "string", "format": "date-time" }
            }
        },
        "EntityList": {
            "type": "object",
            "required": ["entities"],
            "properties": { "entities": { "type": "array", "items": schema_ref("Entity") } }
        }
    })
}

/// The OpenAPI document of a router with this configuration (the orchestrator and entity
/// names, when configured, are enumerated).
pub fn document(cfg: &HttpConfig) -> Value {
    let mut paths = Map::new();
    for (method, path) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation_for(cfg, method, path);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "durable HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Start, query and manage durable orchestrations and entities (Durable Functions style). Every error is `{\"error\": ..., \"code\": ...}`."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        },
        "security": [{ "bearer": [] }, {}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_an_operation() {
        for (method, path) in ROUTES {
            let op = &document(&HttpConfig::new())["paths"][path][method];
            assert!(op["operationId"].is_string(), "{method} {path} is not in the document");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
        }
        let n: usize = document(&HttpConfig::new())["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(n, ROUTES.len());
    }
}
