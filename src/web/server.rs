//! The HTTP side of the console: routes, login and sessions, CSRF checks, the pages,
//! and the action endpoint. Every page and action checks the session and the user's
//! rights on the message itself; what a user may not see answers 404, what they may
//! see but not change answers 403, and in both cases nothing moves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Serialize;

use super::actions::{self, ActionError, DELETE_FROM, RELEASE_FROM};
use super::audit::{AuditLog, Event};
use super::messages::{
    Envelope, ListQuery, Row, printable, read_result, view_message, visible_rows,
};
use super::pages::{LIVE_JS, Pages, STYLE_CSS};
use super::passwords::Passwords;
use super::session::{Session, Sessions, same_secret, set_cookie, token_from_cookies};
use super::tls::{Mode, Peer, WebListener};
use super::users::{Access, Rights, Users};
use super::{WebConfig, WebError};
use crate::config::RunConfig;
use crate::queue::qf::ControlFile;
use crate::queue::{QueueId, Spool};
use crate::report::archive;
use crate::report::listing::{queue_time, summarize};
use crate::report::live::LiveMonitor;
use crate::rules::install::installed_set;
use crate::rules::{ActiveRules, RuleSet};

/// Every response carries these: scripts and styles only from the console itself
/// (so even markup that slipped through could not run), no framing, no caching.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// What one queue holds, as the queue list says.
const QUEUE_ROLES: [(&str, &str); 9] = [
    ("in", "received, waiting for the feed"),
    ("out", "clean or released, waiting for delivery"),
    ("virus", "quarantine: virus signatures"),
    ("ext", "quarantine: blocked attachment names"),
    ("spam", "quarantine: spam rules"),
    ("error", "quarantine: unreadable entries and scan limits"),
    ("delete", "deleted by an admin"),
    ("release", "copies of released messages"),
    ("good", "clean mail held (good_queue)"),
];

/// The console's state, shared by every request.
pub struct App {
    spool: Spool,
    run: RunConfig,
    users_path: PathBuf,
    passwords_path: PathBuf,
    sessions: Sessions,
    audit: AuditLog,
    pages: Pages,
    rules: Mutex<ActiveRules>,
    shipped_rules: OnceLock<Option<Arc<RuleSet>>>,
    live: Mutex<LiveMonitor>,
}

impl App {
    pub fn new(spool: Spool, run: RunConfig, web: &WebConfig) -> App {
        App {
            users_path: web.users_path(&spool),
            passwords_path: web.passwords_path(&spool),
            audit: AuditLog::new(&web.audit_path(&spool)),
            sessions: Sessions::default(),
            pages: Pages::new(),
            rules: Mutex::new(ActiveRules::new()),
            shipped_rules: OnceLock::new(),
            live: Mutex::new(LiveMonitor::new(&spool)),
            spool,
            run,
        }
    }
}

/// Starts the console and serves until SIGTERM or SIGINT; `ready` is told the
/// address once it listens (with port 0, the port the system chose).
pub fn serve(
    spool: Spool,
    run: RunConfig,
    web: &WebConfig,
    ready: impl FnOnce(SocketAddr, bool),
) -> Result<(), WebError> {
    Users::load(&web.users_path(&spool))?;
    Passwords::load(&web.passwords_path(&spool))?;
    let mode = Mode::from_files(
        web.tls_cert.as_deref(),
        web.tls_key.as_deref(),
        web.require_tls,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WebError::io(std::path::Path::new("tokio runtime"), e))?;
    let app = Arc::new(App::new(spool, run, web));
    runtime.block_on(async move {
        let listen_error = |source| WebError::Listen {
            address: web.listen.clone(),
            error: source,
        };
        let tcp = tokio::net::TcpListener::bind(&web.listen)
            .await
            .map_err(listen_error)?;
        let tls = mode.offers_tls();
        let listener = WebListener::start(tcp, mode).map_err(listen_error)?;
        ready(listener_addr(&listener), tls);
        axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<Peer>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(listen_error)
    })
}

fn listener_addr(listener: &WebListener) -> SocketAddr {
    use axum::serve::Listener;
    listener
        .local_addr()
        .map(|peer| peer.addr)
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Every route of the console.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/domains", get(domains_page).post(choose_domain))
        .route("/queues", get(queues_page))
        .route("/live", get(live))
        .route("/help", get(help))
        .route(
            "/static/style.css",
            get(|| async { asset("text/css", STYLE_CSS) }),
        )
        .route(
            "/static/live.js",
            get(|| async { asset("text/javascript", LIVE_JS) }),
        )
        .route("/q/{queue}", get(listing))
        .route("/q/{queue}/action", post(action))
        .route("/q/{queue}/{id}", get(message))
        .route("/q/{queue}/{id}/raw", get(download))
        .route("/archive/{period}/{queue}", get(archive_listing))
        .route("/archive/{period}/{queue}/{id}", get(archive_message))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-store")],
        text,
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

fn redirect_with_cookie(to: &str, cookie: String) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, to.to_string()), (SET_COOKIE, cookie)],
    )
        .into_response()
}

/// A logged-in user making a request.
struct Viewer {
    token: String,
    session: Session,
    user: String,
    rights: Rights,
}

impl Viewer {
    /// The fields every page's header needs.
    fn base(&self, title: &str) -> minijinja::Value {
        context! {
            title => title,
            user => self.user,
            domain => self.session.domain,
            csrf => self.session.csrf,
        }
    }

    fn page(&self, title: &str, extra: minijinja::Value) -> minijinja::Value {
        context! { ..self.base(title), ..extra }
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    token_from_cookies(
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// The form fields of a POST body, repeated names kept.
fn form_fields(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl App {
    fn problem(&self, status: StatusCode, viewer: Option<&Viewer>, message: &str) -> Response {
        let heading = status.canonical_reason().unwrap_or("Error");
        let extra = context! { heading => heading, message => message };
        let context = match viewer {
            Some(viewer) => viewer.page(heading, extra),
            None => context! { title => heading, ..extra },
        };
        html(status, self.pages.render("problem.html", context))
    }

    /// The logged-in user, or the response to send instead (to the login page).
    #[expect(
        clippy::result_large_err,
        reason = "the error is the response, sent at once; boxing it gains nothing"
    )]
    fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, Response> {
        let token = session_token(headers).ok_or_else(|| redirect("/login"))?;
        let session = self
            .sessions
            .get(&token)
            .ok_or_else(|| redirect("/login"))?;
        let user = session.user.clone().ok_or_else(|| redirect("/login"))?;
        let users = Users::load(&self.users_path)
            .map_err(|e| self.problem(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()))?;
        let Some(rights) = users.rights(&user) else {
            // Removed from the users file since logging in.
            self.sessions.end(&token);
            return Err(redirect("/login"));
        };
        Ok(Viewer {
            token,
            session,
            user,
            rights,
        })
    }

    /// Refuses a POST whose CSRF token is missing or not the session's.
    #[expect(
        clippy::result_large_err,
        reason = "the error is the response, sent at once; boxing it gains nothing"
    )]
    fn check_csrf(
        &self,
        session: &Session,
        fields: &[(String, String)],
        viewer: Option<&Viewer>,
    ) -> Result<(), Response> {
        match field(fields, "csrf") {
            Some(token) if same_secret(token, &session.csrf) => Ok(()),
            _ => Err(self.problem(
                StatusCode::FORBIDDEN,
                viewer,
                "The form's security token is missing or out of date: reload the page and try again.",
            )),
        }
    }

    fn audit(
        &self,
        user: &str,
        peer: &Peer,
        action: &str,
        place: (&str, &str),
        result: &str,
        detail: &str,
    ) {
        let event = Event {
            user,
            addr: peer.addr,
            action,
            queue: place.0,
            id: place.1,
            result,
            detail,
        };
        if let Err(e) = self.audit.record(&event) {
            eprintln!("sie-web: {}: {e}", self.audit.path().display());
        }
    }

    /// A queue of entries the console shows (not `archive`, a directory of periods).
    fn message_queue(&self, queue: &str) -> Option<String> {
        (queue != "archive" && self.spool.queue_dir(queue).is_ok()).then(|| queue.to_string())
    }

    /// The queues on the queue list, in order.
    fn shown_queues(&self) -> Vec<String> {
        let mut queues = vec!["in".to_string()];
        queues.extend(self.spool.feed_queue_names());
        queues.extend(
            [
                "out", "virus", "ext", "spam", "error", "delete", "release", "good",
            ]
            .iter()
            .map(|q| q.to_string()),
        );
        queues
    }

    /// The definitions a rescan uses: the installed set, else the shipped one (as a
    /// work process does on a spool with nothing installed), else the built-in
    /// signatures.
    fn current_rules(&self) -> Arc<RuleSet> {
        let mut active = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if installed_set(&self.spool).is_some() {
            active.refresh(&self.spool);
            return active.rules();
        }
        let shipped = self
            .shipped_rules
            .get_or_init(|| RuleSet::shipped().ok().map(|(rules, _)| Arc::new(rules)));
        shipped.clone().unwrap_or_else(|| active.rules())
    }
}

/// The actions a queue offers to a user who may act on its messages.
fn queue_actions(queue: &str) -> Vec<&'static str> {
    let mut list = Vec::new();
    if RELEASE_FROM.contains(&queue) {
        list.push("release");
    }
    if DELETE_FROM.contains(&queue) {
        list.push("delete");
    }
    list.push("rescan");
    list
}

async fn blocking<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(job).await.ok()
}

async fn root(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match app.viewer(&headers) {
        Ok(_) => redirect("/queues"),
        Err(response) => response,
    }
}

async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let viewer = app.viewer(&headers).ok();
    app.problem(StatusCode::NOT_FOUND, viewer.as_ref(), "No such page.")
}

async fn help(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let context = match app.viewer(&headers) {
        Ok(viewer) => viewer.page("Help", context! {}),
        Err(_) => context! { title => "Help" },
    };
    html(StatusCode::OK, app.pages.render("help.html", context))
}

async fn login_page(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let existing = session_token(&headers).and_then(|t| app.sessions.get(&t).map(|s| (t, s)));
    match existing {
        Some((_, session)) if session.user.is_some() => redirect("/queues"),
        Some((_, session)) => login_form(&app, &session, false, None, StatusCode::OK),
        None => {
            let (token, session) = app.sessions.start_anonymous();
            login_form(
                &app,
                &session,
                false,
                Some(set_cookie(Some(&token), peer.tls)),
                StatusCode::OK,
            )
        }
    }
}

fn login_form(
    app: &App,
    session: &Session,
    failed: bool,
    cookie: Option<String>,
    status: StatusCode,
) -> Response {
    let body = app.pages.render(
        "login.html",
        context! { title => "Log in", csrf => session.csrf, failed => failed },
    );
    let mut response = html(status, body);
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let token = session_token(&headers);
    let Some(session) = token.as_deref().and_then(|t| app.sessions.get(t)) else {
        return app.problem(
            StatusCode::FORBIDDEN,
            None,
            "No login form was loaded in this browser (cookies off?): open the login page first.",
        );
    };
    if let Err(response) = app.check_csrf(&session, &fields, None) {
        return response;
    }
    let user = field(&fields, "user").unwrap_or("").trim().to_string();
    let password = field(&fields, "password").unwrap_or("").to_string();
    let check = {
        let app = Arc::clone(&app);
        let user = user.clone();
        blocking(move || -> Result<bool, String> {
            let users = Users::load(&app.users_path).map_err(|e| e.to_string())?;
            let passwords = Passwords::load(&app.passwords_path).map_err(|e| e.to_string())?;
            // Verify even for unknown users: the time taken must not tell them apart.
            let verified = passwords.verify(&user, &password);
            Ok(verified && users.contains(&user))
        })
        .await
    };
    match check {
        Some(Ok(true)) => {
            let (new_token, _) = app.sessions.login(token.as_deref(), &user);
            app.audit(&user, &peer, "login", ("-", "-"), "ok", "");
            redirect_with_cookie("/domains", set_cookie(Some(&new_token), peer.tls))
        }
        Some(Ok(false)) => {
            // Slows password guessing down; argon2 alone costs a guesser little.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            app.audit(
                &user,
                &peer,
                "login",
                ("-", "-"),
                "refused",
                "wrong user or password",
            );
            login_form(&app, &session, true, None, StatusCode::UNAUTHORIZED)
        }
        Some(Err(problem)) => app.problem(StatusCode::INTERNAL_SERVER_ERROR, None, &problem),
        None => app.problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "login check failed",
        ),
    }
}

async fn logout(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(response) = app.check_csrf(&viewer.session, &form_fields(&body), Some(&viewer)) {
        return response;
    }
    app.sessions.end(&viewer.token);
    app.audit(&viewer.user, &peer, "logout", ("-", "-"), "ok", "");
    redirect_with_cookie("/login", set_cookie(None, peer.tls))
}

#[derive(Serialize)]
struct DomainChoice {
    name: String,
    access: &'static str,
}

async fn domains_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let domains: Vec<DomainChoice> = viewer
        .rights
        .named_domains()
        .into_iter()
        .map(|(name, access)| DomainChoice {
            name,
            access: if access == Access::ReadWrite {
                "read-write"
            } else {
                "read-only"
            },
        })
        .collect();
    let context = viewer.page(
        "Domain",
        context! { domains => domains, has_all => viewer.rights.has_all() },
    );
    html(StatusCode::OK, app.pages.render("domains.html", context))
}

async fn choose_domain(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let fields = form_fields(&body);
    if let Err(response) = app.check_csrf(&viewer.session, &fields, Some(&viewer)) {
        return response;
    }
    let chosen = match field(&fields, "domain").unwrap_or("") {
        "*other" => field(&fields, "other").unwrap_or(""),
        domain => domain,
    }
    .trim()
    .to_ascii_lowercase();
    if chosen.is_empty() {
        app.sessions.set_domain(&viewer.token, None);
    } else if viewer.rights.access(&chosen).is_some() {
        app.sessions.set_domain(&viewer.token, Some(chosen));
    } else {
        return app.problem(
            StatusCode::FORBIDDEN,
            Some(&viewer),
            "The users file gives you no rights on that domain.",
        );
    }
    redirect("/queues")
}

#[derive(Serialize)]
struct QueueLine {
    name: String,
    messages: usize,
    bytes: u64,
    about: String,
}

#[derive(Serialize)]
struct LivePanel {
    taken: String,
    per_minute: u64,
    queues: Vec<crate::report::live::QueueLoad>,
}

async fn queues_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let job = {
        let app = Arc::clone(&app);
        let rights = viewer.rights.clone();
        let domain = viewer.session.domain.clone();
        blocking(move || queue_lines(&app, &rights, domain.as_deref()))
    };
    let lines = match job.await {
        Some(Ok(lines)) => lines,
        Some(Err(problem)) => {
            return app.problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), &problem);
        }
        None => return app.problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), "failed"),
    };
    let live_panel = if viewer.rights.has_all() {
        let app = Arc::clone(&app);
        blocking(move || live_snapshot(&app))
            .await
            .and_then(Result::ok)
            .map(|live| LivePanel {
                taken: queue_time(live.taken as i64),
                per_minute: live.per_minute,
                queues: live.queues,
            })
    } else {
        None
    };
    let periods = {
        let spool = app.spool.clone();
        blocking(move || archive::periods(&spool).unwrap_or_default())
            .await
            .unwrap_or_default()
    };
    let show_counts = viewer.rights.has_all() && viewer.session.domain.is_none();
    let context = viewer.page(
        "Queues",
        context! { queues => lines, live => live_panel, periods => periods, show_counts => show_counts },
    );
    html(StatusCode::OK, app.pages.render("queues.html", context))
}

fn queue_lines(app: &App, rights: &Rights, domain: Option<&str>) -> Result<Vec<QueueLine>, String> {
    let mut lines = Vec::new();
    for queue in app.shown_queues() {
        let (messages, bytes) = if rights.has_all() && domain.is_none() {
            let summary = summarize(&app.spool, &queue).map_err(|e| e.to_string())?;
            (summary.msgs, summary.bytes)
        } else {
            let rows =
                visible_rows(&app.spool, &queue, rights, domain).map_err(|e| e.to_string())?;
            (rows.len(), rows.iter().map(|r| r.bytes).sum())
        };
        if queue == "good" && messages == 0 {
            continue;
        }
        let about = QUEUE_ROLES
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|(_, about)| about.to_string())
            .unwrap_or_else(|| "waiting to be scanned".to_string());
        lines.push(QueueLine {
            name: queue,
            messages,
            bytes,
            about,
        });
    }
    Ok(lines)
}

fn live_snapshot(app: &App) -> Result<crate::report::live::LiveSnapshot, String> {
    let mut monitor = app.live.lock().unwrap_or_else(|e| e.into_inner());
    monitor.snapshot().map_err(|e| e.to_string())
}

/// The live numbers as JSON, for the queue page's script; whole-spool numbers, so only
/// for users with rights on every domain.
async fn live(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    if !viewer.rights.has_all() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let snapshot = {
        let app = Arc::clone(&app);
        blocking(move || live_snapshot(&app)).await
    };
    match snapshot {
        Some(Ok(live)) => {
            let body = serde_json::json!({
                "taken": live.taken, "per_minute": live.per_minute, "queues": live.queues,
            });
            ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn query_base(query: &ListQuery) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &query.search)
        .append_pair("sort", &query.sort)
        .append_pair("order", if query.descending { "desc" } else { "asc" })
        .finish()
}

const SORTS: [&str; 6] = ["date", "size", "sender", "subject", "verdict", "id"];

fn render_listing(
    app: &App,
    viewer: &Viewer,
    heading: String,
    base: String,
    rows: Vec<Row>,
    query: ListQuery,
    actions: Vec<&'static str>,
) -> Response {
    let (mut rows, pages, matched) = query.apply(rows);
    for row in &mut rows {
        for text in [
            &mut row.sender,
            &mut row.subject,
            &mut row.verdict,
            &mut row.rule,
        ]
        .into_iter()
        .chain(row.recipients.iter_mut())
        {
            *text = printable(text);
        }
    }
    let page = query.page.min(pages);
    let context = viewer.page(
        &heading,
        context! {
            heading => heading, base => base, rows => rows, pages => pages, page => page,
            matched => matched, query_base => query_base(&query), query => query,
            sorts => SORTS, actions => actions,
        },
    );
    html(StatusCode::OK, app.pages.render("listing.html", context))
}

async fn listing(
    State(app): State<Arc<App>>,
    Path(queue): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(queue) = app.message_queue(&queue) else {
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such queue.");
    };
    let pairs = query_pairs(&uri);
    let query = ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let rows = {
        let (app, rights, domain, queue) = (
            Arc::clone(&app),
            viewer.rights.clone(),
            viewer.session.domain.clone(),
            queue.clone(),
        );
        blocking(move || visible_rows(&app.spool, &queue, &rights, domain.as_deref())).await
    };
    let rows = match rows {
        Some(Ok(rows)) => rows,
        Some(Err(e)) => {
            return app.problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&viewer),
                &e.to_string(),
            );
        }
        None => return app.problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), "failed"),
    };
    let actions = if viewer.rights.may_write_somewhere() {
        queue_actions(&queue)
    } else {
        Vec::new()
    };
    let heading = format!("Queue {queue}");
    render_listing(
        &app,
        &viewer,
        heading,
        format!("/q/{queue}"),
        rows,
        query,
        actions,
    )
}

/// Where a message page's data comes from.
struct Shown {
    place: String,
    base: String,
    id: QueueId,
    message: Vec<u8>,
    control: ControlFile,
    mtime: i64,
    result: Vec<(String, String)>,
    actions: Vec<&'static str>,
}

async fn render_message(app: &App, viewer: &Viewer, shown: Shown) -> Response {
    let envelope = Envelope::of(&shown.control, shown.mtime);
    if !viewer
        .rights
        .may_view(&envelope.sender, &envelope.recipients)
    {
        return app.problem(StatusCode::NOT_FOUND, Some(viewer), "No such message.");
    }
    let actions = if viewer
        .rights
        .may_act(&envelope.sender, &envelope.recipients)
    {
        shown.actions
    } else {
        Vec::new()
    };
    let bytes = shown.message.len();
    let Some(view) = blocking(move || view_message(shown.message)).await else {
        return app.problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(viewer),
            "view failed",
        );
    };
    let result: Vec<(String, String)> = shown
        .result
        .iter()
        .map(|(k, v)| (printable(k), printable(v)))
        .collect();
    let context = viewer.page(
        &format!("Message {}", shown.id),
        context! {
            id => shown.id.as_str(), place => shown.place, base => shown.base,
            subject => printable(&envelope.subject), sender => printable(&envelope.sender),
            recipients => envelope.recipients.iter().map(|r| printable(r)).collect::<Vec<_>>(),
            date => queue_time(envelope.queued), bytes => bytes, result => result,
            view => view, actions => actions,
        },
    );
    html(StatusCode::OK, app.pages.render("message.html", context))
}

/// The queued entry a message URL names, read without a lock: (queue, id, message as
/// MTA-out would send it, control file), or the 404 for a URL naming none.
async fn queued_entry(
    app: &Arc<App>,
    viewer: &Viewer,
    queue: &str,
    id: &str,
) -> Result<(String, QueueId, Vec<u8>, ControlFile), Response> {
    let not_found = || app.problem(StatusCode::NOT_FOUND, Some(viewer), "No such message.");
    let (Some(queue), Some(id)) = (app.message_queue(queue), QueueId::parse(id)) else {
        return Err(not_found());
    };
    let read = {
        let (app, queue, id) = (Arc::clone(app), queue.clone(), id.clone());
        blocking(move || actions::read_entry(&app.spool, &queue, &id)).await
    };
    match read {
        Some(Ok((message, control))) => Ok((queue, id, message, control)),
        _ => Err(not_found()),
    }
}

async fn message(
    State(app): State<Arc<App>>,
    Path((queue, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let (queue, id, message, control) = match queued_entry(&app, &viewer, &queue, &id).await {
        Ok(entry) => entry,
        Err(response) => return response,
    };
    let result = {
        let (app, queue, id) = (Arc::clone(&app), queue.clone(), id.clone());
        blocking(move || read_result(&app.spool, &queue, &id))
            .await
            .unwrap_or_default()
    };
    let shown = Shown {
        place: format!("queue {queue}"),
        base: format!("/q/{queue}"),
        actions: queue_actions(&queue),
        id,
        message,
        control,
        mtime: 0,
        result,
    };
    render_message(&app, &viewer, shown).await
}

async fn download(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path((queue, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let (queue, id, message, control) = match queued_entry(&app, &viewer, &queue, &id).await {
        Ok(entry) => entry,
        Err(response) => return response,
    };
    let (sender, recipients) = (control.sender().unwrap_or_default(), control.recipients());
    if !viewer.rights.may_view(&sender, &recipients) {
        app.audit(
            &viewer.user,
            &peer,
            "download",
            (&queue, id.as_str()),
            "refused",
            "no rights on its domains",
        );
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such message.");
    }
    if !viewer.rights.may_act(&sender, &recipients) {
        app.audit(
            &viewer.user,
            &peer,
            "download",
            (&queue, id.as_str()),
            "refused",
            "read-only",
        );
        return app.problem(StatusCode::FORBIDDEN, Some(&viewer), "Read-only access.");
    }
    app.audit(
        &viewer.user,
        &peer,
        "download",
        (&queue, id.as_str()),
        "ok",
        "",
    );
    let disposition = format!("attachment; filename=\"{id}.eml\"");
    (
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (CONTENT_DISPOSITION, disposition),
        ],
        Body::from(message),
    )
        .into_response()
}

/// One id's outcome on the outcome page.
#[derive(Serialize)]
struct Outcome {
    id: String,
    ok: bool,
    message: String,
}

async fn action(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let fields = form_fields(&body);
    if let Err(response) = app.check_csrf(&viewer.session, &fields, Some(&viewer)) {
        app.audit(
            &viewer.user,
            &peer,
            field(&fields, "action").unwrap_or("-"),
            (&queue, "-"),
            "refused",
            "bad CSRF token",
        );
        return response;
    }
    let Some(queue) = app.message_queue(&queue) else {
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such queue.");
    };
    let name = field(&fields, "action").unwrap_or("");
    let Some(verb) = queue_actions(&queue).into_iter().find(|a| *a == name) else {
        return app.problem(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "This queue does not take that action.",
        );
    };
    let ids: Option<Vec<QueueId>> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| QueueId::parse(v))
        .collect();
    let ids = match ids {
        Some(ids) if !ids.is_empty() => ids,
        _ => {
            return app.problem(
                StatusCode::BAD_REQUEST,
                Some(&viewer),
                "Select at least one message.",
            );
        }
    };
    // Every id is checked before anything is done: a request naming one message the
    // user may not touch does nothing at all.
    let check = {
        let (app, queue, ids, rights) = (
            Arc::clone(&app),
            queue.clone(),
            ids.clone(),
            viewer.rights.clone(),
        );
        blocking(move || -> Result<(), (StatusCode, String)> {
            let dir = app
                .spool
                .queue_dir(&queue)
                .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
            for id in &ids {
                let Ok((envelope, _)) = Envelope::read(&dir.join(id.qf_name()), 0) else {
                    return Err((StatusCode::NOT_FOUND, id.to_string()));
                };
                if !rights.may_view(&envelope.sender, &envelope.recipients) {
                    return Err((StatusCode::NOT_FOUND, id.to_string()));
                }
                if !rights.may_act(&envelope.sender, &envelope.recipients) {
                    return Err((StatusCode::FORBIDDEN, id.to_string()));
                }
            }
            Ok(())
        })
        .await
    };
    match check {
        Some(Ok(())) => {}
        Some(Err((status, id))) => {
            let why = if status == StatusCode::FORBIDDEN {
                "read-only"
            } else {
                "no such message or no rights on its domains"
            };
            app.audit(&viewer.user, &peer, verb, (&queue, &id), "refused", why);
            let message = if status == StatusCode::FORBIDDEN {
                format!("You may only look at message {id}.")
            } else {
                format!("No such message: {id}.")
            };
            return app.problem(status, Some(&viewer), &message);
        }
        None => return app.problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), "failed"),
    }
    let outcomes = {
        let (app, queue, rights) = (Arc::clone(&app), queue.clone(), viewer.rights.clone());
        let user = viewer.user.clone();
        blocking(move || perform(&app, &user, &peer, &queue, verb, &ids, &rights)).await
    };
    let Some(outcomes) = outcomes else {
        return app.problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), "failed");
    };
    let done = outcomes.iter().filter(|o| o.ok).count();
    let status = if done == outcomes.len() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let rescan_actions: Vec<&str> = if verb == "rescan" && done == outcomes.len() {
        queue_actions(&queue)
            .into_iter()
            .filter(|a| *a != "rescan")
            .collect()
    } else {
        Vec::new()
    };
    let context = viewer.page(
        verb,
        context! {
            action => verb, done => done, total => outcomes.len(), outcomes => outcomes,
            base => format!("/q/{queue}"), queue => queue, rescan_actions => rescan_actions,
        },
    );
    html(status, app.pages.render("outcome.html", context))
}

fn perform(
    app: &App,
    user: &str,
    peer: &Peer,
    queue: &str,
    verb: &str,
    ids: &[QueueId],
    rights: &Rights,
) -> Vec<Outcome> {
    let allowed = |control: &ControlFile| {
        rights.may_act(&control.sender().unwrap_or_default(), &control.recipients())
    };
    let rules = (verb == "rescan").then(|| app.current_rules());
    let options = app.run.scan_options("feed1");
    ids.iter()
        .map(|id| {
            let result: Result<String, ActionError> = match verb {
                "release" => actions::release(&app.spool, queue, id, &allowed)
                    .map(|()| "released: now in out (a copy is kept in release)".to_string()),
                "delete" => actions::delete(&app.spool, queue, id, &allowed)
                    .map(|()| "deleted: moved to the delete queue".to_string()),
                _ => {
                    let rules = rules.as_deref().expect("rules are loaded for a rescan");
                    actions::rescan(&app.spool, queue, id, rules, &options, &allowed).map(|v| {
                        if v.name.is_empty() {
                            format!("rescanned: {}", v.kind.as_str())
                        } else {
                            format!(
                                "rescanned: {} {} at {}: {}",
                                v.kind.as_str(),
                                v.name,
                                v.location,
                                v.reason
                            )
                        }
                    })
                }
            };
            let (ok, message) = match result {
                Ok(message) => (true, message),
                Err(e) => (false, format!("failed: {e}")),
            };
            app.audit(
                user,
                peer,
                verb,
                (queue, id.as_str()),
                if ok { "ok" } else { "failed" },
                &message,
            );
            Outcome {
                id: id.to_string(),
                ok,
                message: printable(&message),
            }
        })
        .collect()
}

async fn archive_listing(
    State(app): State<Arc<App>>,
    Path((period, queue)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let rows = {
        let (app, rights, domain) = (
            Arc::clone(&app),
            viewer.rights.clone(),
            viewer.session.domain.clone(),
        );
        let (period, queue) = (period.clone(), queue.clone());
        blocking(move || archived_rows(&app, &period, &queue, &rights, domain.as_deref())).await
    };
    let Some(Some(rows)) = rows else {
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such archive.");
    };
    let pairs = query_pairs(&uri);
    let query = ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let heading = format!("Archive {period}: {queue}");
    let base = format!("/archive/{period}/{queue}");
    render_listing(&app, &viewer, heading, base, rows, query, Vec::new())
}

fn archived_rows(
    app: &App,
    period: &str,
    queue: &str,
    rights: &Rights,
    domain: Option<&str>,
) -> Option<Vec<Row>> {
    if !archive::ARCHIVED_QUEUES.contains(&queue) {
        return None;
    }
    let dir = archive::period_dir(&app.spool, period).ok()?;
    let entries = archive::entries(&dir, queue).ok()?;
    let mut rows = Vec::new();
    for entry in entries {
        let Ok(control) = entry.control() else {
            continue;
        };
        let mtime = entry
            .queued
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let envelope = Envelope::of(&control, mtime);
        if !rights.may_view(&envelope.sender, &envelope.recipients)
            || domain.is_some_and(|d| !envelope.touches_domain(d))
        {
            continue;
        }
        let result = parse_result(entry.result.as_deref().unwrap_or(""));
        let value = |key: &str| {
            result
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        rows.push(Row {
            id: entry.id.to_string(),
            queued: envelope.queued,
            date: queue_time(envelope.queued),
            bytes: entry.bytes(),
            verdict: value("verdict"),
            rule: value("name"),
            may_act: false,
            sender: envelope.sender,
            recipients: envelope.recipients,
            subject: envelope.subject,
        });
    }
    Some(rows)
}

fn parse_result(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn archive_message(
    State(app): State<Arc<App>>,
    Path((period, queue, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(id) = QueueId::parse(&id) else {
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such message.");
    };
    let read = {
        let (app, period, queue, id) =
            (Arc::clone(&app), period.clone(), queue.clone(), id.clone());
        blocking(move || -> Option<(Vec<u8>, ControlFile, Option<String>)> {
            if !archive::ARCHIVED_QUEUES.contains(&queue.as_str()) {
                return None;
            }
            let dir = archive::period_dir(&app.spool, &period).ok()?;
            let (qf, df, result) = archive::read_entry(&dir, &queue, id.as_str()).ok()??;
            let control = ControlFile::parse(&qf).ok()?;
            let mut message = control.header_section();
            message.push(b'\n');
            message.extend_from_slice(&df);
            Some((message, control, result))
        })
        .await
    };
    let Some(Some((message, control, result))) = read else {
        return app.problem(StatusCode::NOT_FOUND, Some(&viewer), "No such message.");
    };
    let shown = Shown {
        place: format!("archive {period} ({queue})"),
        base: format!("/archive/{period}/{queue}"),
        actions: Vec::new(),
        id,
        message,
        control,
        mtime: 0,
        result: parse_result(result.as_deref().unwrap_or("")),
    };
    render_message(&app, &viewer, shown).await
}
