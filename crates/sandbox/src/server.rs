//! The HTTP front: one loopback listener for all three services and the control API.
//!
//! Written on hyper rather than axum because a fault must be able to drop a connection
//! without an answer (hyper closes the connection when the service returns an error;
//! an axum handler always answers).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::faults::{FaultAction, Release};
use crate::throttle::{throttling_error, Throttle};
use crate::{control, scenario, AwsError, Scenario, Service, Shared, World};

/// Largest request body accepted (Secrets Manager's own limit is 64 KiB of secret).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The world to serve.
    pub scenario: Scenario,
    /// Virtual seconds per real second (overrides the scenario's when `Some`).
    pub speed: Option<f64>,
    /// Seed for ids and probabilistic rules (overrides the scenario's when `Some`).
    pub seed: Option<u64>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            port: 0,
            scenario: Scenario::sample(),
            speed: None,
            seed: None,
        }
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    world: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

/// A request that has been read whole.
struct ReadRequest {
    method: hyper::Method,
    path: String,
    query: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// What the service function answers: a response, or "drop the connection".
type Answer = Result<Response<Full<Bytes>>, DropConnection>;

/// Returned to hyper to make it close the connection without answering (fault injection).
#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DropConnection {}

impl Sandbox {
    /// Builds the world from the options and starts serving on loopback.
    pub async fn start(options: SandboxOptions) -> Result<Sandbox, String> {
        let world = scenario::build_world(&options.scenario, options.speed, options.seed)?;
        let throttle = Arc::clone(&world.throttle);
        let world: Shared = Arc::new(Mutex::new(world));
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, mut rx) = oneshot::channel::<()>();
        let served = world.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let world = served.clone();
                        let throttle = throttle.clone();
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let svc = hyper::service::service_fn(move |req| {
                                handle(world.clone(), throttle.clone(), req)
                            });
                            // Errors here are dropped connections (ours or the client's).
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        Ok(Sandbox {
            addr,
            world,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared world: tests read ground truth and change rules through it.
    pub fn world(&self) -> Shared {
        self.world.clone()
    }

    /// The whole state as JSON (see [`crate::World::snapshot`]).
    pub fn snapshot(&self) -> Value {
        self.world.lock().expect("sandbox state lock").snapshot()
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `f` on the world, under its lock, on a blocking thread: a long simulation step
/// holds the lock, and the requests waiting for it must not hold the runtime's workers,
/// which keep reading (and throttling) new requests on arrival meanwhile.
async fn with_world<T, F>(world: &Shared, f: F) -> T
where
    F: FnOnce(&mut World) -> T + Send + 'static,
    T: Send + 'static,
{
    let world = world.clone();
    let job = tokio::task::spawn_blocking(move || {
        // A panic elsewhere must not make the sandbox unusable.
        let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    });
    match job.await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn handle(world: Shared, throttle: Arc<Throttle>, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(json_error(&AwsError::with_status(
                "SerializationException",
                "request body too large or unreadable",
                413,
            )))
        }
    };
    let req = ReadRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    };
    if req.path.starts_with(control::PREFIX) {
        let shared = world.clone();
        let (status, value) = tokio::task::spawn_blocking(move || {
            control::handle(&shared, &req.method, &req.path, &req.query, &req.body)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        return Ok(json_response(status, &value));
    }
    if let Some(target) = header(&req.headers, "x-amz-target") {
        return handle_json(world, &throttle, req, &target).await;
    }
    handle_query(world, &throttle, req).await
}

fn header(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The access key id from a SigV4 `Authorization` header, if any.
pub fn access_key_of(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = header(headers, "authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.trim().to_string())
}

async fn handle_json(world: Shared, throttle: &Throttle, req: ReadRequest, target: &str) -> Answer {
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let service = match prefix {
        "secretsmanager" => Service::SecretsManager,
        "AmazonEC2ContainerServiceV20141113" => Service::Ecs,
        "AmazonSSM" => Service::Ssm,
        "AmazonEC2ContainerRegistry_V20150921" => Service::Ecr,
        _ => {
            return Ok(json_error(&AwsError::new(
                "UnknownOperationException",
                format!("Unknown target {target}"),
            )))
        }
    };
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Ok(json_error(&AwsError::new(
                    "SerializationException",
                    "Start of structure or map found where not expected.",
                )))
            }
        }
    };
    // AWS's rate limits, decided on arrival (wall clock): before this request waits for
    // the world.
    let over = throttle.arrive(service, operation);
    let key = access_key_of(&req.headers);
    let operation = operation.to_string();
    let (recorded, op, key_of_call) = (body.clone(), operation.clone(), key.clone());
    let run = move |w: &mut World, call: usize| match w.call_as(
        service,
        &operation,
        &body,
        key.as_deref(),
    ) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => {
            w.set_call_error(call, &e.code);
            json_error(&e)
        }
    };
    match admit(&world, over, service, &op, recorded, key_of_call, run).await? {
        Admission::Answered(response) => Ok(response),
        Admission::Refuse(e) => Ok(json_error(&e)),
        Admission::Delayed(call, delay, run) => {
            tokio::time::sleep(delay).await;
            Ok(with_world(&world, move |w| run(w, call)).await)
        }
        Admission::Held(call, release, run) => run_when_released(world, call, release, run).await,
    }
}

/// What [`admit`] decided about a call (numbered as in the call log), `F` running it.
enum Admission<F> {
    /// Recorded and answered under one lock of the world: no clock step (a test's, the
    /// control API's) falls between a call entering the log and its answer, so a call in
    /// the log was answered at the state it was recorded in. (Tests that step the clock
    /// by the calls they see rely on it.)
    Answered(Response<Full<Bytes>>),
    /// Answer with this AWS error.
    Refuse(AwsError),
    /// Run it after a latency fault's delay (the world may move meanwhile, as on AWS).
    Delayed(usize, std::time::Duration, F),
    /// It is held at the gate until released.
    Held(usize, oneshot::Receiver<Release>, F),
}

/// Waits for a held call's release, then runs it with `run` (or drops it). The wait and the
/// run happen in a task of their own: when the client goes away, hyper drops this future,
/// but a released call still runs, as AWS acts on a request it received.
async fn run_when_released<F>(
    world: Shared,
    call: usize,
    release: oneshot::Receiver<Release>,
    run: F,
) -> Answer
where
    F: FnOnce(&mut World, usize) -> Response<Full<Bytes>> + Send + 'static,
{
    let (tx, answer) = oneshot::channel();
    tokio::spawn(async move {
        let response = match release.await {
            Ok(Release::Run) => Some(with_world(&world, move |w| run(w, call)).await),
            Ok(Release::Drop) => {
                with_world(&world, move |w| w.set_call_error(call, DROPPED)).await;
                None
            }
            // The world was replaced (a new scenario): its calls are gone.
            Err(_) => None,
        };
        // Nobody reads the answer when the client has gone: that is fine.
        let _ = tx.send(response);
    });
    match answer.await {
        Ok(Some(response)) => Ok(response),
        _ => Err(DropConnection),
    }
}

/// The error recorded for a call whose connection was closed without an answer.
const DROPPED: &str = "DroppedConnection";

/// Auth, call recording and faults, common to all protocols. `over` is the group whose
/// bucket was empty when the request arrived ([`Throttle::arrive`]). `Err` drops the
/// connection.
async fn admit<F>(
    world: &Shared,
    over: Option<&'static str>,
    service: Service,
    operation: &str,
    body: Value,
    access_key: Option<String>,
    run: F,
) -> Result<Admission<F>, DropConnection>
where
    F: FnOnce(&mut World, usize) -> Response<Full<Bytes>> + Send + 'static,
{
    let operation = operation.to_string();
    let admission = with_world(world, move |w| {
        // Session expiry is checked on the real clock inside (credentials are real-world).
        if let Err(e) = w.sts.authenticate(service, access_key.as_deref()) {
            if let Some(group) = over {
                w.throttle.forgive(group);
            }
            w.record(service, &operation, &body, Some(&e.code));
            return Some(Admission::Refuse(e));
        }
        // Over AWS's rate on arrival (wall clock), before faults: a refused call never runs.
        if over.is_some() {
            let e = throttling_error(service);
            w.record(service, &operation, &body, Some(&e.code));
            return Some(Admission::Refuse(e));
        }
        let World { faults, rng, .. } = &mut *w;
        let action = faults.check(service, &operation, &body, rng);
        let code = match &action {
            Some(FaultAction::Error(e)) => Some(e.code.clone()),
            Some(FaultAction::Drop) => Some(DROPPED.to_string()),
            _ => None,
        };
        let call = w.record(service, &operation, &body, code.as_deref());
        match action {
            None => Some(Admission::Answered(run(w, call))),
            Some(FaultAction::Hold) => {
                let subject = w
                    .calls
                    .last()
                    .map(|c| c.subject.clone())
                    .unwrap_or_default();
                let at = w.clock.now();
                let (_, release) = w.faults.hold(service, &operation, subject, at, call);
                Some(Admission::Held(call, release, run))
            }
            Some(FaultAction::Error(e)) => Some(Admission::Refuse(e)),
            Some(FaultAction::Latency(d)) => Some(Admission::Delayed(call, d, run)),
            // Dropped (recorded above): no answer at all.
            Some(FaultAction::Drop) => None,
        }
    })
    .await;
    admission.ok_or(DropConnection)
}

async fn handle_query(world: Shared, throttle: &Throttle, req: ReadRequest) -> Answer {
    let mut params: BTreeMap<String, String> =
        serde_urlencoded::from_bytes(&req.body).unwrap_or_default();
    if params.is_empty() && !req.query.is_empty() {
        params = serde_urlencoded::from_str(&req.query).unwrap_or_default();
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let Some(action) = params.get("Action").cloned() else {
        let e = AwsError::new("MissingAction", "Missing Action");
        return Ok(xml_response(400, e.xml_body(&request_id)));
    };
    let over = throttle.arrive(Service::Sts, &action);
    let key = access_key_of(&req.headers);
    let subject = crate::sts::call_subject(&params, key.as_deref());
    let refused_id = request_id.clone();
    let (op, key_of_call) = (action.clone(), key.clone());
    let run = move |w: &mut World, call: usize| {
        w.advance();
        let now = w.clock.now();
        let World {
            sts,
            rng,
            region,
            account,
            ..
        } = &mut *w;
        let mut ctx = crate::Ctx {
            now,
            region,
            account,
            rng,
        };
        match sts.handle(&mut ctx, key.as_deref(), &action, &params) {
            Ok(xml) => {
                if let Some(issued) = sts.take_last_issued() {
                    w.set_call_subject(call, "issued", issued.into());
                }
                xml_response(200, xml)
            }
            Err(e) => {
                w.set_call_error(call, &e.code);
                xml_response(e.status, e.xml_body(&request_id))
            }
        }
    };
    match admit(&world, over, Service::Sts, &op, subject, key_of_call, run).await? {
        Admission::Answered(response) => Ok(response),
        Admission::Refuse(e) => Ok(xml_response(e.status, e.xml_body(&refused_id))),
        Admission::Delayed(call, delay, run) => {
            tokio::time::sleep(delay).await;
            Ok(with_world(&world, move |w| run(w, call)).await)
        }
        Admission::Held(call, release, run) => run_when_released(world, call, release, run).await,
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(
            serde_json::to_vec(value).unwrap_or_default(),
        )))
        .expect("static response parts")
}

fn json_error(e: &AwsError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, &e.json_body());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&e.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn xml_response(status: u16, xml: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(xml)))
        .expect("static response parts")
}
