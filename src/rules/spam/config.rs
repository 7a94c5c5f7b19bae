//! Reading rule files in SpamAssassin's configuration syntax (`Conf::Parser`): one
//! directive a line, `#` comments (`\#` for a literal hash), `if`/`ifplugin`/`else`/
//! `endif` blocks, and the rule directives. A line that cannot be used becomes a
//! [`LoadProblem`] with its file and line and is skipped; nothing is dropped silently.
//!
//! Conditions are evaluated as SpamAssassin 4.0.1 running with only its rule engine
//! (the Check plugin): `ifplugin X` is true only for `Mail::SpamAssassin::Plugin::Check`,
//! so blocks for other plugins are skipped, conservatively (and reported, with the
//! number of rules they hold); `can(...)`/`has(...)` are true only for the rule
//! language features SIE implements ([`FEATURES`]); `version` is 4.000001;
//! `local_tests_only` is 1. `lang xx` lines (translations) are ignored.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use regex::bytes::Regex;

use super::header::HeaderSpec;
use super::meta::{Meta, is_rule_name};
use super::perlre::compile_delimited;
use super::uri::UriSettings;
use crate::rules::LoadProblem;

const LOADED_PLUGINS: [&str; 1] = ["Mail::SpamAssassin::Plugin::Check"];
/// `can(...)` answers: the features of SpamAssassin's rule language that SIE
/// implements, and the Perl version check (regex features newer Perls brought are
/// judged rule by rule). Others (`feature_capture_rules`, `feature_get_host`, DNS
/// and Bayes features) are false.
const FEATURES: [&str; 9] = [
    "Mail::SpamAssassin::Conf::perl_min_version_5010000",
    "Mail::SpamAssassin::Conf::feature_registryboundaries",
    "Mail::SpamAssassin::Conf::feature_meta_rules_matching",
    "Mail::SpamAssassin::Conf::feature_compile_regexp",
    "Mail::SpamAssassin::Conf::feature_bug6558_free",
    "Mail::SpamAssassin::Conf::feature_header_address_parser",
    "Mail::SpamAssassin::Conf::feature_header_first_last",
    "Mail::SpamAssassin::Conf::feature_header_match_many",
    "Mail::SpamAssassin::Conf::feature_local_tests_only",
];
const VERSION: &str = "4.000001";

/// SpamAssassin settings that do not change which rules hit or how they score in
/// SIE (reports, networks, Bayes, welcome lists used by eval rules, `test` lines);
/// they are accepted without a problem.
const IGNORED_SETTINGS: &[&str] = &[
    "add_header",
    "all_spam_to",
    "allow_user_rules",
    "always_trust_envelope_sender",
    "auto_welcomelist_factor",
    "auto_whitelist_factor",
    "bayes_auto_expire",
    "bayes_auto_learn",
    "bayes_expiry_max_db_size",
    "bayes_file_mode",
    "bayes_ignore_from",
    "bayes_ignore_header",
    "bayes_ignore_to",
    "bayes_journal_max_size",
    "bayes_learn_during_report",
    "bayes_learn_to_journal",
    "bayes_min_ham_num",
    "bayes_min_spam_num",
    "bayes_path",
    "bayes_seen_ttl",
    "bayes_sql_dsn",
    "bayes_sql_override_username",
    "bayes_sql_password",
    "bayes_sql_username",
    "bayes_sql_username_authorized",
    "bayes_store_module",
    "bayes_token_sources",
    "bayes_token_ttl",
    "bayes_use_hapaxes",
    "blacklist_from",
    "blacklist_to",
    "blacklist_uri_host",
    "blocklist_from",
    "blocklist_to",
    "blocklist_uri_host",
    "body_part_scan_size",
    "clear_dns_query_restrictions",
    "clear_dns_servers",
    "clear_headers",
    "clear_internal_networks",
    "clear_msa_networks",
    "clear_originating_ip_headers",
    "clear_report_template",
    "clear_trusted_networks",
    "clear_unsafe_report_template",
    "country_db_path",
    "country_db_type",
    "def_welcomelist_auth",
    "def_welcomelist_from_rcvd",
    "def_whitelist_auth",
    "def_whitelist_from_rcvd",
    "dns_available",
    "dns_block_rule",
    "dns_block_time",
    "dns_local_ports_avoid",
    "dns_local_ports_none",
    "dns_local_ports_permit",
    "dns_options",
    "dns_query_restriction",
    "dns_server",
    "dns_test_interval",
    "enable_compat",
    "enlist_addrlist",
    "envelope_sender_header",
    "fold_headers",
    "geodb_module",
    "geodb_options",
    "geodb_search_path",
    "internal_networks",
    "lock_method",
    "mbox_format_from_regex",
    "more_spam_to",
    "msa_networks",
    "normalize_charset",
    "ok_languages",
    "ok_locales",
    "originating_ip_headers",
    "parse_dkim_uris",
    "priority",
    "rawbody_part_scan_size",
    "rbl_timeout",
    "remove_header",
    "report",
    "report_charset",
    "report_contact",
    "report_hostname",
    "report_safe",
    "report_safe_copy_headers",
    "report_template",
    "report_wrap_width",
    "require_version",
    "reuse",
    "rewrite_header",
    "skip_rbl_checks",
    "subjprefix",
    "test",
    "time_limit",
    "trusted_networks",
    "unblacklist_from",
    "unblocklist_from",
    "unsafe_report",
    "unsafe_report_template",
    "unwelcomelist_auth",
    "unwelcomelist_from",
    "unwelcomelist_from_rcvd",
    "unwhitelist_auth",
    "unwhitelist_from",
    "unwhitelist_from_rcvd",
    "uri_country_db_isp_path",
    "uri_country_db_path",
    "uri_host_lists",
    "use_auto_welcomelist",
    "use_auto_whitelist",
    "use_bayes",
    "use_bayes_rules",
    "use_learner",
    "user_scores_dsn",
    "user_scores_fallback_to_global",
    "user_scores_ldap_password",
    "user_scores_ldap_username",
    "user_scores_sql_custom_query",
    "user_scores_sql_password",
    "user_scores_sql_username",
    "util_rb_2tld",
    "util_rb_3tld",
    "version_tag",
    "welcomelist_allows_relays",
    "welcomelist_auth",
    "welcomelist_from",
    "welcomelist_from_rcvd",
    "welcomelist_to",
    "welcomelist_uri_host",
    "whitelist_allows_relays",
    "whitelist_auth",
    "whitelist_from",
    "whitelist_from_rcvd",
    "whitelist_to",
    "whitelist_uri_host",
];

/// What a rule tests, before compilation into the run-time set.
pub enum Test {
    Header {
        spec: HeaderSpec,
        negate: bool,
        regex: Regex,
        if_unset: Option<Vec<u8>>,
    },
    Exists(HeaderSpec),
    Body(Regex),
    Rawbody(Regex),
    Uri(Regex),
    Full(Regex),
    /// The expression text; compiled once every rule is known (`rules_matching`).
    Meta(String),
}

pub struct Definition {
    pub test: Test,
    pub file: PathBuf,
    pub line: usize,
}

/// Everything read from the rule files so far.
pub struct Loader {
    pub definitions: BTreeMap<String, Definition>,
    /// Rules whose every definition was refused, with the place of the last one.
    pub refused: BTreeMap<String, (PathBuf, usize)>,
    /// Score set 0 (no network tests, no Bayes).
    pub scores: HashMap<String, f64>,
    pub describes: HashMap<String, String>,
    pub tflags: HashMap<String, String>,
    pub required_score: f64,
    pub tlds: UriSettings,
    pub problems: Vec<LoadProblem>,
}

struct Conditional {
    skipping_before: bool,
    line: usize,
    /// The condition asked for a plugin or feature SIE lacks (`ifplugin X`,
    /// `plugin(X)`, `can(X)`), so the branch it rules out may be one SpamAssassin
    /// would read.
    lacks: bool,
    text: String,
}

/// A block skipped because SIE lacks a plugin or feature: its rule definitions
/// are counted and reported once, at the line of the condition.
struct SkippedBlock {
    line: usize,
    condition: String,
    rules: usize,
}

const RULE_DIRECTIVES: [&str; 6] = ["header", "body", "rawbody", "uri", "full", "meta"];

impl Default for Loader {
    fn default() -> Loader {
        Loader {
            definitions: BTreeMap::new(),
            refused: BTreeMap::new(),
            scores: HashMap::new(),
            describes: HashMap::new(),
            tflags: HashMap::new(),
            required_score: 5.0,
            tlds: UriSettings::default(),
            problems: Vec::new(),
        }
    }
}

/// `s/(?<!\\)#.*$//; s/\\#/#/g`, then trimmed.
fn strip_comment(line: &[u8]) -> Vec<u8> {
    let mut end = line.len();
    for (index, &byte) in line.iter().enumerate() {
        if byte == b'#' && (index == 0 || line[index - 1] != b'\\') {
            end = index;
            break;
        }
    }
    let mut out = Vec::with_capacity(end);
    let mut index = 0;
    while index < end {
        if line[index] == b'\\' && line.get(index + 1) == Some(&b'#') && index + 1 < end {
            out.push(b'#');
            index += 2;
        } else {
            out.push(line[index]);
            index += 1;
        }
    }
    let is_space = |b: &u8| b.is_ascii_whitespace() || *b == 0x0B;
    let start = out.iter().position(|b| !is_space(b)).unwrap_or(out.len());
    let stop = out
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    out[start..stop.max(start)].to_vec()
}

/// Splits at the first run of whitespace.
fn split_word(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(u8::is_ascii_whitespace) {
        Some(at) => {
            let rest = &text[at..];
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            (&text[..at], &rest[skip..])
        }
        None => (text, &[]),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Loader {
    fn problem(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.problems.push(LoadProblem {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        });
    }

    /// Reads one rule file.
    pub fn load_text(&mut self, file: &Path, content: &[u8]) {
        let mut conditionals: Vec<Conditional> = Vec::new();
        let mut skipping = false;
        let mut skipped: Option<SkippedBlock> = None;
        for (index, raw_line) in content.split(|b| *b == b'\n').enumerate() {
            let number = index + 1;
            let line = strip_comment(raw_line);
            if line.is_empty() {
                continue;
            }
            if line.starts_with(b"lang") {
                let (_, rest) = split_word(&line);
                if line.get(4).is_some_and(u8::is_ascii_whitespace) && !rest.is_empty() {
                    continue;
                }
            }
            let (key, value) = split_word(&line);
            let key = text(key).to_ascii_lowercase().replace('-', "_");
            let was_skipping = skipping;
            match key.as_str() {
                "endif" => match conditionals.pop() {
                    Some(open) => skipping = open.skipping_before,
                    None => self.problem(file, number, "config: missing starting 'if' for 'endif'"),
                },
                "if" | "ifplugin" => {
                    let condition = text(value);
                    let (holds, lacks) = if key == "ifplugin" {
                        let loaded = LOADED_PLUGINS.contains(&condition.trim());
                        (loaded, !loaded)
                    } else {
                        evaluate_condition(&condition).unwrap_or_else(|error| {
                            self.problem(file, number, format!("config: {error}; block skipped"));
                            (false, false)
                        })
                    };
                    conditionals.push(Conditional {
                        skipping_before: skipping,
                        line: number,
                        lacks,
                        text: format!("{key} {condition}"),
                    });
                    if !holds {
                        skipping = true;
                    }
                }
                "else" => match conditionals.last() {
                    None => self.problem(file, number, "config: 'else' missing starting if"),
                    Some(_) if conditionals.iter().any(|c| c.skipping_before) => skipping = true,
                    Some(_) => skipping = !skipping,
                },
                _ => {
                    if !skipping {
                        self.directive(file, number, &key, value);
                    } else if RULE_DIRECTIVES.contains(&key.as_str())
                        && let Some(block) = skipped.as_mut()
                    {
                        block.rules += 1;
                    }
                    continue;
                }
            }
            if !was_skipping && skipping {
                skipped = conditionals
                    .last()
                    .filter(|open| open.lacks)
                    .map(|open| SkippedBlock {
                        line: if key == "else" { number } else { open.line },
                        condition: if key == "else" {
                            format!("else of '{}'", open.text)
                        } else {
                            format!("'{}'", open.text)
                        },
                        rules: 0,
                    });
            } else if was_skipping && !skipping {
                self.report_skipped(file, skipped.take());
            }
        }
        self.report_skipped(file, skipped.take());
        for open in conditionals {
            self.problem(
                file,
                open.line,
                "config: unclosed 'if' at the end of the file",
            );
        }
    }

    fn report_skipped(&mut self, file: &Path, block: Option<SkippedBlock>) {
        if let Some(block) = block.filter(|block| block.rules > 0) {
            self.problem(
                file,
                block.line,
                format!(
                    "{} needs a SpamAssassin plugin or feature SIE does not have; \
                     {} rule definition(s) in the block skipped",
                    block.condition, block.rules
                ),
            );
        }
    }

    fn directive(&mut self, file: &Path, line: usize, key: &str, value: &[u8]) {
        match key {
            "header" | "body" | "rawbody" | "uri" | "full" | "meta" => {
                let (name, rest) = split_word(value);
                if name.is_empty() || rest.is_empty() {
                    self.problem(
                        file,
                        line,
                        format!("config: invalid or missing '{key}' value"),
                    );
                    return;
                }
                self.define(file, line, key, &text(name), rest);
            }
            "score" => self.score(file, line, value),
            "describe" | "tflags" => {
                let (name, rest) = split_word(value);
                if rest.is_empty() {
                    self.problem(file, line, format!("config: missing '{key}' value"));
                    return;
                }
                let map = if key == "describe" {
                    &mut self.describes
                } else {
                    &mut self.tflags
                };
                map.insert(text(name), text(rest));
            }
            "required_score" | "required_hits" => {
                let value = text(value);
                match value.parse::<f64>() {
                    Ok(score) if is_perl_number(&value) => self.required_score = score,
                    _ => self.problem(file, line, format!("config: invalid '{key}' value")),
                }
            }
            "util_rb_tld" => {
                for tld in text(value).split_whitespace() {
                    self.tlds.add(tld);
                }
            }
            "clear_util_rb" => self.tlds.clear(),
            "redirector_pattern" => match compile_delimited(value) {
                Ok(pattern) => self.tlds.add_redirector(pattern),
                Err(error) => self.problem(
                    file,
                    line,
                    format!("redirector_pattern skipped: {error} in '{}'", text(value)),
                ),
            },
            "loadplugin" | "tryplugin" => self.problem(
                file,
                line,
                format!(
                    "SIE does not load SpamAssassin plugins; '{key} {}' ignored",
                    text(value)
                ),
            ),
            "include" => self.problem(
                file,
                line,
                "include is not supported; put the file in the definitions directory",
            ),
            key if IGNORED_SETTINGS.contains(&key) => {}
            other => self.problem(
                file,
                line,
                format!("config: '{other}' is not a directive SIE knows; line ignored"),
            ),
        }
    }

    fn score(&mut self, file: &Path, line: usize, value: &[u8]) {
        let value = text(value);
        let mut words = value.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        let scores: Vec<&str> = words.collect();
        if name.is_empty() || !(scores.len() == 1 || scores.len() == 4) {
            self.problem(
                file,
                line,
                "config: score: requires a symbolic rule name and 1 or 4 scores",
            );
            return;
        }
        let first = scores[0];
        let relative = scores
            .iter()
            .any(|s| s.starts_with('(') && s.ends_with(')'));
        let bare = first.trim_start_matches('(').trim_end_matches(')');
        let numeric = |s: &str| {
            let s = s.strip_prefix('-').unwrap_or(s);
            let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
        };
        let all_valid = scores.iter().all(|s| {
            numeric(
                s.strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .unwrap_or(s),
            )
        });
        if !all_valid {
            self.problem(
                file,
                line,
                format!("config: score: the non-numeric score ({value}) is not valid"),
            );
            return;
        }
        let number: f64 = bare.parse().unwrap_or(0.0);
        if relative {
            match self.scores.get_mut(&name) {
                Some(score) => *score += number,
                None => self.problem(
                    file,
                    line,
                    "config: score: relative score without previous setting in configuration",
                ),
            }
        } else {
            self.scores.insert(name, number);
        }
    }

    fn refuse(&mut self, file: &Path, line: usize, name: &str, message: String) {
        self.problem(file, line, format!("rule {name} skipped: {message}"));
        if !self.definitions.contains_key(name) {
            self.refused
                .insert(name.to_string(), (file.to_path_buf(), line));
        }
    }

    fn define(&mut self, file: &Path, line: usize, kind: &str, name: &str, rest: &[u8]) {
        if !is_rule_name(name) || name.len() > 100 {
            self.problem(
                file,
                line,
                format!("config: error: rule '{name}' has invalid characters or is too long"),
            );
            return;
        }
        let is_eval =
            rest.starts_with(b"eval:") || (kind == "header" && rest.starts_with(b"rbleval:"));
        if is_eval && kind != "uri" && kind != "meta" {
            let call = text(rest);
            let call = call.split_once(':').map_or(call.as_str(), |(_, call)| call);
            self.refuse(
                file,
                line,
                name,
                format!("eval test {call} is not supported (SpamAssassin plugin code)"),
            );
            return;
        }
        if has_capture_template(rest) {
            let source = text(rest);
            self.refuse(
                file,
                line,
                name,
                format!("capture templates %{{NAME}} are not supported in '{source}'"),
            );
            return;
        }
        let test = match kind {
            "header" => parse_header_test(rest),
            "meta" => {
                let source = text(rest);
                Meta::parse(name, &source, &|_| Vec::new()).map(|_| Test::Meta(source))
            }
            _ => compile_delimited(rest).map(|regex| match kind {
                "body" => Test::Body(regex),
                "rawbody" => Test::Rawbody(regex),
                "uri" => Test::Uri(regex),
                _ => Test::Full(regex),
            }),
        };
        match test {
            Ok(test) => {
                self.refused.remove(name);
                self.definitions.insert(
                    name.to_string(),
                    Definition {
                        test,
                        file: file.to_path_buf(),
                        line,
                    },
                );
            }
            Err(error) => {
                let source = text(rest);
                self.refuse(file, line, name, format!("{error} in '{source}'"));
            }
        }
    }
}

/// A `%{NAME}` capture template (SpamAssassin 4.0 `feature_capture_rules`): the
/// pattern depends on what another rule captured.
fn has_capture_template(rule: &[u8]) -> bool {
    rule.windows(3).enumerate().any(|(at, w)| {
        w[0] == b'%'
            && w[1] == b'{'
            && w[2].is_ascii_uppercase()
            && (at == 0 || rule[at - 1] != b'\\')
    })
}

/// `^[+-]?\d+(?:\.\d*)?$`, SpamAssassin's numeric setting syntax.
fn is_perl_number(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// `header NAME Header =~ /re/ [if-unset: X]`, `!~`, or `exists:Header`.
fn parse_header_test(rest: &[u8]) -> Result<Test, String> {
    if let Some(name) = rest.strip_prefix(b"exists:") {
        let name = text(name);
        let bare = name.strip_suffix(':').unwrap_or(&name);
        let valid = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(format!("invalid head test header: {name}"));
        }
        return HeaderSpec::parse(bare).map(Test::Exists);
    }
    let head_len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
        .count();
    let head = text(&rest[..head_len]);
    let after = &rest[head_len..];
    let blanks = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let after = &after[blanks..];
    let negate = match after.get(..2) {
        Some(b"=~") => false,
        Some(b"!~") => true,
        _ => return Err("invalid head test (expected Header =~ /re/ or !~)".to_string()),
    };
    let pattern = &after[2..];
    let skip = pattern
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let mut pattern = &pattern[skip..];
    if head.is_empty() || pattern.is_empty() {
        return Err("invalid head test".to_string());
    }
    let modifiers = head.split(':').skip(1).filter(|m| !m.is_empty()).count();
    let valid_modifiers = head
        .split(':')
        .skip(1)
        .all(|m| m.is_empty() || m.bytes().all(|b| b.is_ascii_lowercase()));
    if modifiers > 2 || !valid_modifiers {
        return Err(format!("invalid head test header: {head}"));
    }
    let head = head.strip_suffix(':').unwrap_or(&head);
    let mut if_unset = None;
    if pattern.ends_with(b"]")
        && let Some(open) = find(pattern, b"[if-unset:")
    {
        let before = &pattern[..open];
        let inside = &pattern[open + 10..pattern.len() - 1];
        let leading = inside
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if open > 0
            && before.last().is_some_and(u8::is_ascii_whitespace)
            && leading > 0
            && inside.len() > leading
        {
            if_unset = Some(inside[leading..].to_vec());
            let trimmed = before
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(0, |e| e + 1);
            pattern = &pattern[..trimmed];
        }
    }
    let spec = HeaderSpec::parse(head)?;
    let regex = compile_delimited(pattern)?;
    Ok(Test::Header {
        spec,
        negate,
        regex,
        if_unset,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Evaluates an `if` condition: `plugin(X)`, `can(X)`, `has(X)`, `version`,
/// `perl_version`, `local_tests_only`, numbers, `! && || ( )` and comparisons.
/// Returns whether the condition holds, and whether it asked for a plugin or
/// feature SIE lacks.
pub fn evaluate_condition(condition: &str) -> Result<(bool, bool), String> {
    let mut expression = String::new();
    let mut lacks = false;
    let mut rest = condition;
    while !rest.is_empty() {
        let word_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if word_len == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            expression.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut word_len = word_len;
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if is_digits(&rest[..word_len]) && rest[word_len..].starts_with('.') {
            word_len += 1 + rest[word_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
        }
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        let call = matches!(word, "plugin" | "can" | "has");
        if call && rest.trim_start().starts_with('(') {
            let open = rest.find('(').unwrap_or(0);
            let close = rest.find(')').ok_or("config: unclosed ( in 'if'")?;
            let argument = rest[open + 1..close].trim();
            let truth = match word {
                "plugin" => LOADED_PLUGINS.contains(&argument),
                _ => FEATURES.contains(&argument),
            };
            lacks |= !truth;
            expression.push_str(if truth { " 1 " } else { " 0 " });
            rest = &rest[close + 1..];
            continue;
        }
        let replacement = match word {
            "version" => VERSION.to_string(),
            "perl_version" => "5.036000".to_string(),
            "local_tests_only" => "1".to_string(),
            number if number.bytes().all(|b| b.is_ascii_digit() || b == b'.') => number.to_string(),
            other => return Err(format!("unparseable value '{other}' in 'if'")),
        };
        expression.push(' ');
        expression.push_str(&replacement);
        expression.push(' ');
    }
    let meta = Meta::parse("if", &expression, &|_| Vec::new())
        .map_err(|error| format!("error parsing conditional: {error}"))?;
    Ok((meta.eval(&|_| 0.0).unwrap_or(0.0) != 0.0, lacks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Loader {
        let mut loader = Loader::default();
        loader.load_text(Path::new("test.cf"), text.as_bytes());
        loader
    }

    fn problems(loader: &Loader) -> Vec<String> {
        loader.problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn comments_and_escaped_hashes() {
        assert_eq!(strip_comment(b"  body A /a\\#b/  # note"), b"body A /a#b/");
        assert_eq!(strip_comment(b"# all comment"), b"");
    }

    #[test]
    fn rule_directives_are_read() {
        let loader = load(
            "header H Subject =~ /x/i [if-unset: none]\n\
             header E exists:Message-Id\n\
             header N From !~ /@/\n\
             body B /buy/\nrawbody R /<b>/\nuri U /\\.biz/\nfull F /^X-/m\n\
             meta M (B && !N) || (H + E > 1)\n\
             score B 2.5\nscore H 1 2 3 4\nscore H (0.5)\ndescribe B Buy!\ntflags B multiple maxhits=3\n\
             required_hits 7\n",
        );
        assert!(loader.problems.is_empty(), "{:?}", problems(&loader));
        assert_eq!(loader.definitions.len(), 8);
        assert_eq!(loader.scores["B"], 2.5);
        assert_eq!(loader.scores["H"], 1.5);
        assert_eq!(loader.describes["B"], "Buy!");
        assert_eq!(loader.tflags["B"], "multiple maxhits=3");
        assert_eq!(loader.required_score, 7.0);
        let Test::Header {
            if_unset, negate, ..
        } = &loader.definitions["H"].test
        else {
            panic!("not a header test");
        };
        assert_eq!(if_unset.as_deref(), Some(&b"none"[..]));
        assert!(!negate);
    }

    #[test]
    fn problems_name_file_and_line() {
        let loader = load(
            "body OK /fine/\n\
             body LOOK /a(?=b)/\n\
             header EV eval:check_for_forged_received()\n\
             body 1BAD /x/\n\
             meta BADMETA A +1\n\
             score X abc\n\
             frobnicate 1\n\
             header H2 From:domain =~ /x/\n\
             body CAP /%{SUBJECT}/\n",
        );
        let problems = problems(&loader);
        assert_eq!(problems.len(), 8, "{problems:?}");
        assert!(problems[0].starts_with("test.cf:2: rule LOOK skipped: lookahead"));
        assert!(problems[1].starts_with("test.cf:3: rule EV skipped: eval test"));
        assert!(problems[2].starts_with("test.cf:4:"));
        assert!(problems[3].starts_with("test.cf:5: rule BADMETA skipped"));
        assert!(problems[4].starts_with("test.cf:6:"));
        assert!(problems[5].starts_with("test.cf:7:"));
        assert!(problems[6].starts_with("test.cf:8: rule H2 skipped"));
        assert!(problems[7].starts_with("test.cf:9: rule CAP skipped: capture templates"));
        assert!(loader.refused.contains_key("LOOK"));
        assert!(loader.definitions.contains_key("OK"));
    }

    #[test]
    fn failed_redefinition_keeps_the_old_rule() {
        let loader = load("body A /good/\nbody A /(?<=bad)/\n");
        assert_eq!(loader.problems.len(), 1);
        assert!(loader.definitions.contains_key("A"));
        assert!(!loader.refused.contains_key("A"));
    }

    #[test]
    fn conditional_blocks() {
        let loader = load(
            "ifplugin Mail::SpamAssassin::Plugin::Check\nbody IN_CHECK /a/\nendif\n\
             ifplugin Mail::SpamAssassin::Plugin::Razor2\nbody IN_RAZOR eval:check_razor2()\nelse\nbody NO_RAZOR /b/\nendif\n\
             if (version >= 3.004000)\nbody NEW /c/\nendif\n\
             if !plugin(Mail::SpamAssassin::Plugin::DKIM)\nbody NO_DKIM /d/\nendif\n\
             if can(Mail::SpamAssassin::Conf::feature_registryboundaries)\nutil_rb_tld zz\nendif\n\
             if can(Mail::SpamAssassin::Conf::feature_unknown)\nbody UNKNOWN /e/\nendif\n\
             lang de describe IN_CHECK Deutsch\n",
        );
        let problems = problems(&loader);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with(
            "test.cf:4: 'ifplugin Mail::SpamAssassin::Plugin::Razor2' needs a SpamAssassin plugin"
        ));
        assert!(problems[0].ends_with("1 rule definition(s) in the block skipped"));
        assert!(
            problems[1]
                .starts_with("test.cf:18: 'if can(Mail::SpamAssassin::Conf::feature_unknown)'")
        );
        let names: Vec<&str> = loader.definitions.keys().map(String::as_str).collect();
        assert_eq!(names, ["IN_CHECK", "NEW", "NO_DKIM", "NO_RAZOR"]);
        assert!(loader.tlds.contains("zz"));
        assert!(!loader.describes.contains_key("IN_CHECK"));
    }

    #[test]
    fn unbalanced_conditionals_are_reported() {
        let loader = load("endif\nif (version > 3)\nbody A /a/\n");
        let problems = problems(&loader);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("test.cf:1:"));
        assert!(problems[1].starts_with("test.cf:2:"));
    }
}
