//! Spam rules: scored tests over headers, body text, URIs and the raw message, in the
//! syntax of SpamAssassin 4.0 rule files (`vdl/spam.vdl` and any `*.cf` beside it),
//! evaluated as `spamassassin -L` does with only its own rule engine: score set 0
//! (no network tests, no Bayes), threshold `required_score` (5.0 by default).
//!
//! Supported: `header` (`=~`, `!~`, `exists:`, `ALL`, `ToCc`, `MESSAGEID`, `:raw`,
//! `:addr`, `:name`, `:first`, `:last`, `[if-unset: ...]`), `body`, `rawbody`, `uri`,
//! `full`, `meta` (`&& || ! ( )`, `+ - * /`, comparisons, `?:`, `rules_matching()`),
//! `score`, `describe`, `tflags` (`multiple`, `maxhits=N`, `nosubject`, `nice`; rules
//! flagged `net` or `learn` are inactive), `required_score`/`required_hits`,
//! `util_rb_tld`, `redirector_pattern`, `if`/`ifplugin`/`else`/`endif`. Refused with
//! a [`LoadProblem`] naming file and line: `eval:` tests (plugin code), regex
//! features the `regex` crate lacks (see `perlre`), `%{NAME}` capture templates,
//! relay pseudo-headers, `:host`/`:domain`/`:ip` modifiers, metas over refused
//! rules, and (one problem per block) rules inside blocks for plugins SIE lacks.
//! How messages are read is described in `message`, `html`, `uri` and `header`;
//! `tests/spamassassin_compat.rs` checks it all against SpamAssassin itself.

mod charset;
mod config;
mod content_type;
mod header;
mod html;
mod message;
mod meta;
mod perlre;
mod uri;
mod uri_clean;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use regex::bytes::Regex;
use regex_automata::meta::{Config as SetConfig, Regex as SetRegex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::literal::Extractor;

use self::config::{Definition, Loader, Test};
use self::header::HeaderSpec;
use self::message::Message;
use self::meta::{Meta, glob_matches};
use self::uri::UriSettings;
use crate::rules::LoadProblem;

/// The rule file SIE itself ships in a definitions directory.
pub const SPAM_VDL: &str = "spam.vdl";

/// Rule sets that fail to load as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error("cannot read spam rules {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One rule that hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamHit {
    pub name: String,
    pub score: f64,
    pub description: String,
}

/// The outcome of checking one message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamResult {
    pub score: f64,
    pub threshold: f64,
    /// Scored rules that hit (not `__` sub-rules), in rule-name order.
    pub hits: Vec<SpamHit>,
}

impl SpamResult {
    /// Whether the score reaches the threshold, as SpamAssassin's `is_spam`.
    pub fn is_spam(&self) -> bool {
        self.score >= self.threshold
    }
}

impl fmt::Display for SpamResult {
    /// `score=6.2 required=5.0 tests=A,B`, like SpamAssassin's status header.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.hits.iter().map(|hit| hit.name.as_str()).collect();
        let tests = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        };
        write!(
            f,
            "score={:.1} required={:.1} tests={tests}",
            self.score, self.threshold
        )
    }
}

/// What [`SpamRules::rule_texts`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTexts {
    pub body: Vec<Vec<u8>>,
    pub rawbody: Vec<Vec<u8>>,
    pub uris: Vec<Vec<u8>>,
}

#[derive(Debug)]
enum Kind {
    Header {
        spec: usize,
        negate: bool,
        regex: Regex,
        if_unset: Option<Vec<u8>>,
    },
    Exists(usize),
    Body(Regex),
    Rawbody(Regex),
    Uri(Regex),
    Full(Regex),
}

#[derive(Debug)]
struct Rule {
    id: usize,
    kind: Kind,
    /// For rules over whole parts or the whole message: `perlre::without_line_anchors`
    /// of the rule's regex, tried first on each text.
    quick: Option<Regex>,
    multiple: bool,
    max_hits: Option<usize>,
    no_subject: bool,
}

#[derive(Debug)]
struct MetaRule {
    id: usize,
    meta: Meta,
    /// Rule id of each dependency; `None` for names no rule defines (count 0).
    deps: Vec<Option<usize>>,
    /// Scored (non-zero, not `net`/`learn`). Inactive metas are still evaluated:
    /// SpamAssassin lets them gate the metas that read them.
    active: bool,
    /// Part of a dependency cycle: never hits, counts as 0 for other metas.
    cyclic: bool,
}

#[derive(Debug)]
struct Info {
    name: String,
    score: f64,
    description: String,
    is_meta: bool,
}

/// Every `body` rule in one automaton, run once over each body line: a rule whose
/// pattern no line matches scores 0 without a pass of its own, which is most rules
/// on most messages. Rules that may hit are then counted one by one as before.
#[derive(Debug)]
struct BodyFilter {
    /// The rules' patterns as one overlapping set, as `regex::bytes::RegexSet`
    /// builds them, with the prefilter of [`start_prefilter`].
    set: SetRegex,
    /// Position in the set of each rule (by index into `SpamRules::rules`).
    slot: Vec<Option<usize>>,
}

/// Which set members matched the first body line (the Subject) and which any other.
struct BodyMatches {
    subject: Vec<bool>,
    rest: Vec<bool>,
}

/// Bytes of each literal a match starts with that the prefilter looks for.
const START_LEN: usize = 4;

/// More distinct starts than this and the searcher for them would be a slow
/// automaton (an NFA); shorter starts are tried first.
const MAX_STARTS: usize = 500;

/// A searcher for the places where a match of one of `patterns` can start: the
/// first bytes of every literal some match begins with (from `regex-syntax`'s
/// prefix extraction, case forms included), cut to at most [`START_LEN`] bytes so
/// that there are few enough for a DFA. The set's own prefilter looks for the
/// whole literals of case-insensitive rules, hundreds of case forms, and so runs
/// as an NFA over every byte of the body. `None` when some pattern may start with
/// anything (the set then chooses its own prefilter).
fn start_prefilter(patterns: &[&str]) -> Option<Prefilter> {
    let mut parser = regex_syntax::ParserBuilder::new();
    parser.unicode(false).utf8(false);
    let extractor = Extractor::new();
    let mut literals = Vec::new();
    for pattern in patterns {
        // A parser is good for one pattern only.
        let hir = parser.build().parse(pattern).ok()?;
        let seq = extractor.extract(&hir);
        for literal in seq.literals()? {
            if literal.as_bytes().is_empty() {
                return None;
            }
            literals.push(literal.as_bytes().to_vec());
        }
    }
    (1..=START_LEN).rev().find_map(|len| {
        let starts: BTreeSet<&[u8]> = literals
            .iter()
            .map(|literal| &literal[..literal.len().min(len)])
            .collect();
        if starts.len() > MAX_STARTS {
            return None;
        }
        Prefilter::new(
            MatchKind::LeftmostFirst,
            &starts.into_iter().collect::<Vec<_>>(),
        )
    })
}

impl BodyFilter {
    /// `None` when there are fewer than two body rules or the union would not
    /// compile within the per-rule limits.
    fn new(rules: &[Rule]) -> Option<BodyFilter> {
        let mut slot = vec![None; rules.len()];
        let mut patterns = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if let Kind::Body(regex) = &rule.kind {
                slot[index] = Some(patterns.len());
                patterns.push(regex.as_str());
            }
        }
        if patterns.len() < 2 {
            return None;
        }
        // `RegexSetBuilder::new(patterns).unicode(false).size_limit(..)`, spelled out
        // to give the set its prefilter.
        let config = SetConfig::new()
            .nfa_size_limit(Some(perlre::SIZE_LIMIT))
            .hybrid_cache_capacity(2 << 20)
            .match_kind(MatchKind::All)
            .utf8_empty(false)
            .which_captures(WhichCaptures::None)
            .prefilter(start_prefilter(&patterns));
        let set = SetRegex::builder()
            .configure(config)
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .build_many(&patterns)
            .ok()?;
        Some(BodyFilter { set, slot })
    }

    fn matches(&self, body: &[Vec<u8>]) -> BodyMatches {
        let members = self.set.pattern_len();
        let mut subject = PatternSet::new(members);
        let mut rest = PatternSet::new(members);
        for (index, line) in body.iter().enumerate() {
            let seen = if index == 0 { &mut subject } else { &mut rest };
            self.set
                .which_overlapping_matches(&Input::new(line.as_slice()), seen);
        }
        let flags = |seen: &PatternSet| {
            let mut flags = vec![false; members];
            for member in seen.iter() {
                flags[member.as_usize()] = true;
            }
            flags
        };
        BodyMatches {
            subject: flags(&subject),
            rest: flags(&rest),
        }
    }
}

/// A compiled rule set; immutable and shared by every scan.
#[derive(Debug)]
pub struct SpamRules {
    info: Vec<Info>,
    specs: Vec<HeaderSpec>,
    rules: Vec<Rule>,
    body_filter: Option<BodyFilter>,
    /// Active metas in dependency order.
    metas: Vec<MetaRule>,
    threshold: f64,
    tlds: UriSettings,
}

impl SpamRules {
    /// No rules: every message scores 0 against the default threshold.
    pub fn empty() -> SpamRules {
        SpamRules {
            info: Vec::new(),
            specs: Vec::new(),
            rules: Vec::new(),
            body_filter: None,
            metas: Vec::new(),
            threshold: 5.0,
            tlds: UriSettings::default(),
        }
    }

    /// `dir/spam.vdl` (when present) then every `*.cf` in `dir`, in name order.
    ///
    /// # Errors
    ///
    /// The directory or one of the files cannot be read.
    pub fn load_dir(dir: &Path) -> Result<(SpamRules, Vec<LoadProblem>), SpamError> {
        let read_error = |source| SpamError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        let vdl = dir.join(SPAM_VDL);
        if vdl.is_file() {
            paths.push(vdl);
        }
        let mut cf_files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|ext| ext == "cf") && path.is_file() {
                cf_files.push(path);
            }
        }
        cf_files.sort();
        paths.extend(cf_files);
        SpamRules::load_files(&paths)
    }

    /// The given rule files, in order (later definitions override earlier ones).
    ///
    /// # Errors
    ///
    /// One of the files cannot be read.
    pub fn load_files(paths: &[PathBuf]) -> Result<(SpamRules, Vec<LoadProblem>), SpamError> {
        let mut loader = Loader::default();
        for path in paths {
            let content = std::fs::read(path).map_err(|source| SpamError::Read {
                path: path.clone(),
                source,
            })?;
            loader.load_text(path, &content);
        }
        Ok(compile(loader))
    }

    /// Rules from text, as if read from a file named `name`; for tests and tools.
    pub fn from_text(name: &str, text: &str) -> (SpamRules, Vec<LoadProblem>) {
        let mut loader = Loader::default();
        loader.load_text(Path::new(name), text.as_bytes());
        compile(loader)
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Number of active rules (sub-rules and metas included).
    pub fn len(&self) -> usize {
        self.rules.len() + self.metas.iter().filter(|meta| meta.active).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks one message given as RFC 822 bytes. Never panics: should a bug in SIE
    /// panic, the result carries a single zero-score hit `SIE_SPAM_CHECK_FAILED`.
    pub fn check(&self, message: &[u8]) -> SpamResult {
        match panic::catch_unwind(AssertUnwindSafe(|| self.check_inner(message))) {
            Ok(result) => result,
            Err(payload) => {
                let reason = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                SpamResult {
                    score: 0.0,
                    threshold: self.threshold,
                    hits: vec![SpamHit {
                        name: "SIE_SPAM_CHECK_FAILED".to_string(),
                        score: 0.0,
                        description: format!("the spam check failed: {reason}"),
                    }],
                }
            }
        }
    }

    /// The texts rules see in `message`: `body` lines (Subject first), `rawbody`
    /// chunks and `uri` variants, for debugging rules (like `spamassassin -D`).
    pub fn rule_texts(&self, message: &[u8]) -> RuleTexts {
        let message = Message::parse(message);
        let (body, html_uris) = message.body_lines();
        RuleTexts {
            uris: uri::uri_list(&body, &html_uris, &self.tlds),
            rawbody: message.rawbody_chunks(),
            body,
        }
    }

    /// What a `header` rule on `spec` (`Subject`, `From:addr`, `ALL:raw`, ...)
    /// matches in `message`; `None` when the message has no such field.
    ///
    /// # Errors
    ///
    /// `spec` is not a header SIE supports.
    pub fn header_text(message: &[u8], spec: &str) -> Result<Option<Vec<u8>>, String> {
        let spec = HeaderSpec::parse(spec)?;
        Ok(spec.get(&Message::parse(message)))
    }

    pub fn is_spam(&self, result: &SpamResult) -> bool {
        result.is_spam()
    }

    fn check_inner(&self, raw: &[u8]) -> SpamResult {
        // With no rule and no meta nothing can hit: parsing would be wasted work
        // (a definitions set made of virus signatures only).
        if self.rules.is_empty() && self.metas.is_empty() {
            return SpamResult {
                score: 0.0,
                threshold: self.threshold,
                hits: Vec::new(),
            };
        }
        let message = Message::parse(raw);
        let mut counts = vec![0.0f64; self.info.len()];
        let mut header_cache: HashMap<usize, Option<Vec<u8>>> = HashMap::new();
        let needs = |f: fn(&Kind) -> bool| self.rules.iter().any(|rule| f(&rule.kind));
        let need_body = needs(|k| matches!(k, Kind::Body(_) | Kind::Uri(_)));
        let (body, html_uris) = if need_body {
            message.body_lines()
        } else {
            (Vec::new(), Vec::new())
        };
        let uris = if needs(|k| matches!(k, Kind::Uri(_))) {
            uri::uri_list(&body, &html_uris, &self.tlds)
        } else {
            Vec::new()
        };
        let body_matches = self
            .body_filter
            .as_ref()
            .map(|filter| filter.matches(&body));
        let rawbody = if needs(|k| matches!(k, Kind::Rawbody(_))) {
            message.rawbody_chunks()
        } else {
            Vec::new()
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let limit = if rule.multiple {
                rule.max_hits.unwrap_or(usize::MAX)
            } else {
                1
            };
            let hits = match &rule.kind {
                Kind::Header {
                    spec,
                    negate,
                    regex,
                    if_unset,
                } => {
                    let value = header_cache
                        .entry(*spec)
                        .or_insert_with(|| self.specs[*spec].get(&message));
                    let text = value.as_deref().or(if_unset.as_deref()).unwrap_or_default();
                    if *negate {
                        usize::from(!regex.is_match(text))
                    } else {
                        count_matches(regex, None, [text], limit)
                    }
                }
                Kind::Exists(spec) => {
                    let value = header_cache
                        .entry(*spec)
                        .or_insert_with(|| self.specs[*spec].get(&message));
                    usize::from(value.is_some())
                }
                Kind::Body(regex) => {
                    let filtered = match (&body_matches, &self.body_filter) {
                        (Some(found), Some(filter)) => filter.slot[index].map(|slot| {
                            found.rest[slot] || (!rule.no_subject && found.subject[slot])
                        }),
                        _ => None,
                    };
                    match filtered {
                        Some(false) => 0,
                        Some(true) if limit == 1 => 1,
                        _ => {
                            let skip = usize::from(rule.no_subject);
                            let lines = body.iter().skip(skip).map(Vec::as_slice);
                            count_matches(regex, None, lines, limit)
                        }
                    }
                }
                Kind::Rawbody(regex) => {
                    let chunks = rawbody.iter().map(Vec::as_slice);
                    count_matches(regex, rule.quick.as_ref(), chunks, limit)
                }
                Kind::Uri(regex) => {
                    count_matches(regex, None, uris.iter().map(Vec::as_slice), limit)
                }
                Kind::Full(regex) => {
                    let whole = [message.pristine.as_slice()];
                    count_matches(regex, rule.quick.as_ref(), whole, limit)
                }
            };
            counts[rule.id] = hits as f64;
        }
        self.run_metas(&mut counts);
        let mut hits: Vec<SpamHit> = counts
            .iter()
            .enumerate()
            .filter(|(id, count)| **count > 0.0 && !self.info[*id].name.starts_with("__"))
            .map(|(id, _)| SpamHit {
                name: self.info[id].name.clone(),
                score: self.info[id].score,
                description: self.info[id].description.clone(),
            })
            .collect();
        hits.sort_by(|a, b| a.name.cmp(&b.name));
        SpamResult {
            // `+ 0.0` turns the empty sum's -0.0 into 0.0.
            score: hits.iter().map(|hit| hit.score).sum::<f64>() + 0.0,
            threshold: self.threshold,
            hits,
        }
    }
}

impl SpamRules {
    /// Evaluates the metas as SpamAssassin's Check plugin schedules them, which
    /// matters for metas reading a meta or rule that has no score:
    /// - during the rule run, a meta is evaluated once every rule it reads is
    ///   "ready": a scored rule that ran, or a meta already evaluated. An unscored
    ///   meta becomes ready only when it evaluates false (a true one is dropped by
    ///   `got_hit` before it is marked), so the metas reading it wait;
    /// - at the end, scored metas still waiting are evaluated if every meta they
    ///   read is ready, counting unscored and undefined non-meta rules as 0.
    fn run_metas(&self, counts: &mut [f64]) {
        let mut ready = vec![false; counts.len()];
        for rule in &self.rules {
            ready[rule.id] = true;
        }
        let evaluate = |meta: &MetaRule, counts: &[f64]| -> Option<f64> {
            meta.meta
                .eval(&|index| meta.deps[index].map_or(0.0, |id| counts[id]))
                .filter(|value| *value != 0.0 && !value.is_nan())
        };
        for meta in &self.metas {
            if meta.cyclic {
                ready[meta.id] = true;
                continue;
            }
            if !meta.deps.iter().all(|dep| dep.is_some_and(|id| ready[id])) {
                continue;
            }
            let hit = evaluate(meta, counts);
            if meta.active {
                if let Some(value) = hit {
                    counts[meta.id] = if value > 0.0 { value } else { 1.0 };
                }
                ready[meta.id] = true;
            } else if hit.is_none() {
                ready[meta.id] = true;
            }
        }
        for meta in &self.metas {
            if !meta.active || meta.cyclic || ready[meta.id] {
                continue;
            }
            let waiting = meta
                .deps
                .iter()
                .any(|dep| dep.is_some_and(|id| self.info[id].is_meta && !ready[id]));
            if waiting {
                continue;
            }
            if let Some(value) = evaluate(meta, counts) {
                counts[meta.id] = if value > 0.0 { value } else { 1.0 };
            }
            ready[meta.id] = true;
        }
    }
}

/// Matches of `regex` over `texts`, at most `limit` (1 unless `tflags multiple`).
/// Matches of `regex` in `texts`, counted up to `limit`; `quick`, when given, is a
/// looser regex that must match a text for `regex` to.
fn count_matches<'t>(
    regex: &Regex,
    quick: Option<&Regex>,
    texts: impl IntoIterator<Item = &'t [u8]>,
    limit: usize,
) -> usize {
    let mut hits = 0;
    for text in texts {
        if quick.is_some_and(|quick| !quick.is_match(text)) {
            continue;
        }
        if limit == 1 {
            if regex.is_match(text) {
                return 1;
            }
            continue;
        }
        for _ in regex.find_iter(text) {
            hits += 1;
            if hits >= limit {
                return hits;
            }
        }
    }
    hits
}

fn has_flag(tflags: Option<&String>, flag: &str) -> bool {
    tflags.is_some_and(|flags| flags.split_whitespace().any(|f| f == flag))
}

/// Turns what was read into the run-time set: default scores, inactive rules
/// (score 0, `net`, `learn`), metas compiled and ordered.
fn compile(loader: Loader) -> (SpamRules, Vec<LoadProblem>) {
    let Loader {
        definitions,
        refused,
        mut scores,
        describes,
        tflags,
        required_score,
        tlds,
        mut problems,
    } = loader;
    for name in definitions.keys() {
        scores.entry(name.clone()).or_insert_with(|| {
            let score = if name.starts_with("T_") { 0.01 } else { 1.0 };
            if has_flag(tflags.get(name), "nice") {
                -score
            } else {
                score
            }
        });
    }
    let is_active = |name: &str| {
        let flags = tflags.get(name);
        scores.get(name).is_some_and(|score| *score != 0.0)
            && !has_flag(flags, "net")
            && !has_flag(flags, "learn")
    };
    let mut rules_set = SpamRules::empty();
    rules_set.threshold = required_score;
    rules_set.tlds = tlds;
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut spec_ids: HashMap<String, usize> = HashMap::new();
    let mut metas: Vec<(String, Meta, PathBuf, usize)> = Vec::new();
    let score_names: BTreeSet<String> = scores.keys().cloned().collect();
    for (name, Definition { test, file, line }) in definitions {
        let id = rules_set.info.len();
        rules_set.info.push(Info {
            is_meta: matches!(test, Test::Meta(_)),
            score: scores.get(&name).copied().unwrap_or(0.0),
            description: describes
                .get(&name)
                .cloned()
                .unwrap_or_else(|| "No description available.".to_string()),
            name: name.clone(),
        });
        ids.insert(name.clone(), id);
        let mut spec_id = |spec: HeaderSpec| {
            let key = format!("{spec:?}");
            let next = rules_set.specs.len();
            let id = *spec_ids.entry(key).or_insert(next);
            if id == next {
                rules_set.specs.push(spec);
            }
            id
        };
        let kind = match test {
            Test::Meta(source) => {
                let expand = |glob: &str| {
                    score_names
                        .iter()
                        .filter(|candidate| glob_matches(glob, candidate))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                match Meta::parse(&name, &source, &expand) {
                    Ok(meta) => metas.push((name.clone(), meta, file, line)),
                    Err(error) => problems.push(LoadProblem {
                        file,
                        line,
                        message: format!("rule {name} skipped: {error}"),
                    }),
                }
                continue;
            }
            Test::Header {
                spec,
                negate,
                regex,
                if_unset,
            } => Kind::Header {
                spec: spec_id(spec),
                negate,
                regex,
                if_unset,
            },
            Test::Exists(spec) => Kind::Exists(spec_id(spec)),
            Test::Body(regex) => Kind::Body(regex),
            Test::Rawbody(regex) => Kind::Rawbody(regex),
            Test::Uri(regex) => Kind::Uri(regex),
            Test::Full(regex) => Kind::Full(regex),
        };
        if !is_active(&name) {
            continue;
        }
        let flags = tflags.get(&name);
        let max_hits = flags.and_then(|flags| {
            flags
                .split_whitespace()
                .find_map(|flag| flag.strip_prefix("maxhits="))
                .and_then(|n| n.parse().ok())
        });
        let quick = match &kind {
            Kind::Full(regex) | Kind::Rawbody(regex) => perlre::without_line_anchors(regex),
            _ => None,
        };
        rules_set.rules.push(Rule {
            id,
            kind,
            quick,
            multiple: has_flag(flags, "multiple"),
            max_hits,
            no_subject: has_flag(flags, "nosubject"),
        });
    }
    order_metas(
        &mut rules_set,
        metas,
        &ids,
        &refused,
        &is_active,
        &mut problems,
    );
    rules_set.body_filter = BodyFilter::new(&rules_set.rules);
    (rules_set, problems)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MetaState {
    New,
    InProgress,
    Done,
    /// Reads a refused rule (directly or through a skipped meta).
    Skipped,
}

type PendingMeta = (String, Meta, PathBuf, usize);

/// Places metas after the metas they read (depth first, without recursion). A meta
/// over a refused rule is refused too; one in a dependency cycle is reported and
/// never hits.
fn order_metas(
    rules_set: &mut SpamRules,
    metas: Vec<PendingMeta>,
    ids: &HashMap<String, usize>,
    refused: &BTreeMap<String, (PathBuf, usize)>,
    is_active: &dyn Fn(&str) -> bool,
    problems: &mut Vec<LoadProblem>,
) {
    let meta_index: HashMap<&str, usize> = metas
        .iter()
        .enumerate()
        .map(|(index, (name, ..))| (name.as_str(), index))
        .collect();
    let mut state = vec![MetaState::New; metas.len()];
    let mut cyclic = vec![false; metas.len()];
    let mut order = Vec::new();
    for root in 0..metas.len() {
        if state[root] != MetaState::New {
            continue;
        }
        state[root] = MetaState::InProgress;
        let mut stack = vec![(root, 0usize)];
        while let Some((index, next)) = stack.last_mut() {
            let index = *index;
            let deps = &metas[index].1.deps;
            if *next < deps.len() {
                let dep = &deps[*next];
                *next += 1;
                if let Some(&dep_index) = meta_index.get(dep.as_str())
                    && state[dep_index] == MetaState::New
                {
                    state[dep_index] = MetaState::InProgress;
                    stack.push((dep_index, 0));
                }
                continue;
            }
            stack.pop();
            let (name, _, file, line) = &metas[index];
            let _ = name;
            let mut outcome = MetaState::Done;
            for dep in deps {
                let dep_state = meta_index.get(dep.as_str()).map(|&d| state[d]);
                if refused.contains_key(dep) || dep_state == Some(MetaState::Skipped) {
                    problems.push(LoadProblem {
                        file: file.clone(),
                        line: *line,
                        message: format!(
                            "rule {name} skipped: it depends on {dep}, which was skipped"
                        ),
                    });
                    outcome = MetaState::Skipped;
                    break;
                }
                if dep_state == Some(MetaState::InProgress)
                    && let Some(&dep_index) = meta_index.get(dep.as_str())
                {
                    let from = stack
                        .iter()
                        .position(|(member, _)| *member == dep_index)
                        .unwrap_or(stack.len());
                    let members: Vec<usize> = stack[from..]
                        .iter()
                        .map(|(member, _)| *member)
                        .chain([index])
                        .collect();
                    for member in members {
                        if !cyclic[member] {
                            cyclic[member] = true;
                            let (member_name, _, member_file, member_line) = &metas[member];
                            problems.push(LoadProblem {
                                file: member_file.clone(),
                                line: *member_line,
                                message: format!(
                                    "rule {member_name} never hits: it is in a meta dependency cycle"
                                ),
                            });
                        }
                    }
                }
            }
            state[index] = outcome;
            if outcome == MetaState::Done {
                order.push(index);
            }
        }
    }
    let mut slots: Vec<Option<PendingMeta>> = metas.into_iter().map(Some).collect();
    for index in order {
        let Some((name, meta, _, _)) = slots[index].take() else {
            continue;
        };
        let deps = meta.deps.iter().map(|dep| ids.get(dep).copied()).collect();
        rules_set.metas.push(MetaRule {
            id: ids[&name],
            active: is_active(&name),
            cyclic: cyclic[index],
            meta,
            deps,
        });
    }
}

#[cfg(test)]
mod tests;
