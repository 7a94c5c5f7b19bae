//! SIE's spam rules against SpamAssassin itself.
//!
//! Every fixture in `tests/data/spam/` is checked by SIE and by
//! `spamassassin -L` with the same rule file, and both must report the same rules,
//! the same scores (to 0.01) and the same spam verdict. SpamAssassin runs with a
//! private configuration that loads nothing but the rules under test:
//!
//! ```text
//! HOME=<tmp> spamassassin -L -x -C <tmp>/rules --siteconfigpath=<tmp>/site -p <tmp>/user_prefs
//! ```
//!
//! - `-C <tmp>/rules` replaces Debian's default rules directory
//!   (`/usr/share/spamassassin`, 23k lines) with a directory holding only the rule
//!   file under test;
//! - `--siteconfigpath <tmp>/site` replaces `/etc/spamassassin`: its `init.pre`
//!   loads only the Check plugin (the rule engine; no Bayes, no DNS, no AWL) and its
//!   `local.cf` writes the hits with their scores in `X-Spam-Tests:` and the verdict
//!   in `X-Spam-Status:`, unfolded;
//! - `-p <tmp>/user_prefs` (empty) and `-x` keep the user's own settings out;
//! - `-L` is local tests only, i.e. score set 0, as SIE.
//!
//! With that configuration no rule of SpamAssassin's own can fire: a hit outside
//! the rule file fails the test. The test fails, and never skips, when
//! `spamassassin` is not installed (Debian package `spamassassin`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sie::rules::spam::SpamRules;

const FIXTURES: &str = "tests/data/spam";
/// SpamAssassin's internal rules that could fire without any rule file; with only
/// the Check plugin loaded there are none, and any other outside hit is an error.
const SPAMASSASSIN_INTERNAL: &[&str] = &[];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES)
}

/// A fixture: `expect RULE` lines (or `expect none`), then the raw message.
struct Fixture {
    name: String,
    expected: Vec<String>,
    message: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixture directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 15,
        "expected the spam fixtures in {FIXTURES}"
    );
    paths
        .into_iter()
        .map(|path| {
            let raw = std::fs::read(&path).unwrap();
            let mut expected = Vec::new();
            let mut rest: &[u8] = &raw;
            while let Some(line_end) = rest.iter().position(|b| *b == b'\n') {
                let Some(name) = rest[..line_end].strip_prefix(b"expect ") else {
                    break;
                };
                let name = String::from_utf8_lossy(name).trim().to_string();
                if name != "none" {
                    expected.push(name);
                }
                rest = &rest[line_end + 1..];
            }
            Fixture {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                expected,
                message: rest.to_vec(),
            }
        })
        .collect()
}

/// A private SpamAssassin configuration holding only `rule_files`.
struct SpamAssassin {
    dir: tempfile::TempDir,
}

impl SpamAssassin {
    fn new(rule_files: &[PathBuf]) -> SpamAssassin {
        let version = Command::new("spamassassin").arg("--version").output();
        match version {
            Ok(output) if output.status.success() => {}
            other => panic!(
                "spamassassin is required for this test (apt-get install spamassassin): {other:?}"
            ),
        }
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        let site = dir.path().join("site");
        std::fs::create_dir(&rules).unwrap();
        std::fs::create_dir(&site).unwrap();
        for (index, file) in rule_files.iter().enumerate() {
            // SpamAssassin reads only *.cf files, in name order.
            std::fs::copy(file, rules.join(format!("{index:02}_rules.cf"))).unwrap();
        }
        std::fs::write(
            site.join("init.pre"),
            "loadplugin Mail::SpamAssassin::Plugin::Check\n",
        )
        .unwrap();
        std::fs::write(
            site.join("local.cf"),
            "report_safe 0\nclear_headers\nfold_headers 0\n\
             add_header all Status _YESNO_, score=_SCORE_ required=_REQD_ tests=_TESTS_\n\
             add_header all Tests _TESTSSCORES(,)_\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("user_prefs"), "").unwrap();
        SpamAssassin { dir }
    }

    fn command(&self, extra: &[&str]) -> Command {
        let root = self.dir.path();
        let mut command = Command::new("spamassassin");
        command
            .env("HOME", root)
            .env("LANG", "C")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .args(extra)
            .arg("-x")
            .arg("-C")
            .arg(root.join("rules"))
            .arg(format!("--siteconfigpath={}", root.join("site").display()))
            .arg("-p")
            .arg(root.join("user_prefs"));
        command
    }

    /// `spamassassin --lint`: SpamAssassin itself accepts every line.
    fn lint(&self) -> (bool, String) {
        let output = self.command(&["--lint"]).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn check(&self, message: &[u8]) -> SpamAssassinResult {
        let mut child = self
            .command(&["-L"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(message).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        parse_headers(&output.stdout)
    }
}

#[derive(Debug)]
struct SpamAssassinResult {
    tests: BTreeMap<String, f64>,
    is_spam: bool,
    score: f64,
    required: f64,
}

/// Reads `X-Spam-Status: Yes, score=6.2 required=5.0 tests=...` and
/// `X-Spam-Tests: A=1.5,B=2` from the checked message.
fn parse_headers(output: &[u8]) -> SpamAssassinResult {
    let text = String::from_utf8_lossy(output);
    let header = |name: &str| -> String {
        text.lines()
            .take_while(|line| !line.is_empty())
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in spamassassin output:\n{text}"))
            .trim()
            .to_string()
    };
    let status = header("X-Spam-Status:");
    let field = |key: &str| -> f64 {
        status
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|value| value.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    };
    let tests_line = header("X-Spam-Tests:");
    let tests = if tests_line == "none" {
        BTreeMap::new()
    } else {
        tests_line
            .split(',')
            .map(|pair| {
                let (name, score) = pair.split_once('=').unwrap();
                (name.to_string(), score.parse().unwrap())
            })
            .collect()
    };
    SpamAssassinResult {
        tests,
        is_spam: status.starts_with("Yes"),
        score: field("score="),
        required: field("required="),
    }
}

/// Compares SIE and SpamAssassin on every fixture; returns the per-fixture
/// disagreements, and the hits SIE found per fixture.
fn compare(
    rule_files: &[PathBuf],
    expected_problems: &[&str],
) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let (rules, problems) = SpamRules::load_files(rule_files).unwrap();
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let expected_ok = problems.len() == expected_problems.len()
        && problems
            .iter()
            .zip(expected_problems)
            .all(|(problem, expected)| problem.contains(expected));
    assert!(expected_ok, "SIE load problems: {problems:#?}");
    let spamassassin = SpamAssassin::new(rule_files);
    let (clean, lint) = spamassassin.lint();
    assert!(clean, "spamassassin --lint refuses the rules:\n{lint}");
    let fixtures = fixtures();
    // SpamAssassin takes a fraction of a second per message: run them side by side.
    let results: Vec<SpamAssassinResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = fixtures
            .iter()
            .map(|fixture| scope.spawn(|| spamassassin.check(&fixture.message)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut disagreements = Vec::new();
    let mut sie_hits = BTreeMap::new();
    for (fixture, theirs) in fixtures.iter().zip(results) {
        let ours = rules.check(&fixture.message);
        let our_tests: BTreeMap<String, f64> = ours
            .hits
            .iter()
            .map(|hit| (hit.name.clone(), hit.score))
            .collect();
        let their_tests: BTreeMap<String, f64> = theirs
            .tests
            .iter()
            .filter(|(name, _)| !SPAMASSASSIN_INTERNAL.contains(&name.as_str()))
            .map(|(name, score)| (name.clone(), *score))
            .collect();
        let mut problems = Vec::new();
        let our_names: Vec<&String> = our_tests.keys().collect();
        let their_names: Vec<&String> = their_tests.keys().collect();
        if our_names != their_names {
            problems.push(format!(
                "hits: SIE {our_names:?}, SpamAssassin {their_names:?}"
            ));
        }
        for (name, score) in &our_tests {
            if let Some(theirs) = their_tests.get(name)
                && (score - theirs).abs() > 0.01
            {
                problems.push(format!(
                    "score of {name}: SIE {score}, SpamAssassin {theirs}"
                ));
            }
        }
        let their_total: f64 = their_tests.values().sum();
        if (ours.score - their_total).abs() > 0.01 || (ours.score - theirs.score).abs() > 0.051 {
            problems.push(format!(
                "total: SIE {}, SpamAssassin {their_total} (status {})",
                ours.score, theirs.score
            ));
        }
        if (ours.threshold - theirs.required).abs() > 0.01 || ours.is_spam() != theirs.is_spam {
            problems.push(format!(
                "verdict: SIE spam={} at {}, SpamAssassin spam={} at {}",
                ours.is_spam(),
                ours.threshold,
                theirs.is_spam,
                theirs.required
            ));
        }
        if !problems.is_empty() {
            disagreements.push(format!("{}: {}", fixture.name, problems.join("; ")));
        }
        sie_hits.insert(
            fixture.name.clone(),
            our_names.into_iter().cloned().collect(),
        );
    }
    (disagreements, sie_hits)
}

#[test]
fn every_directive_agrees_with_spamassassin() {
    let rule_file = fixtures_dir().join("compat.cf");
    // The block for a plugin no engine has is skipped by both; SIE says so.
    let (disagreements, sie_hits) = compare(
        &[rule_file],
        &["compat.cf:15: 'ifplugin Mail::SpamAssassin::Plugin::NotLoadedAnywhere' needs"],
    );
    // The expectations catch SIE and SpamAssassin agreeing on a wrong answer (a
    // fixture that exercises nothing).
    let mut unmet = Vec::new();
    for fixture in fixtures() {
        let hits = &sie_hits[&fixture.name];
        let missing: Vec<&String> = fixture
            .expected
            .iter()
            .filter(|e| !hits.contains(e))
            .collect();
        let unexpected: Vec<&String> = hits
            .iter()
            .filter(|h| !fixture.expected.contains(h))
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            unmet.push(format!(
                "{}: missing {missing:?}, unexpected {unexpected:?}",
                fixture.name
            ));
        }
    }
    assert!(
        disagreements.is_empty() && unmet.is_empty(),
        "SIE and SpamAssassin disagree:\n{}\nexpectations not met:\n{}",
        disagreements.join("\n"),
        unmet.join("\n")
    );
}

#[test]
fn every_directive_is_exercised() {
    let rule_file = std::fs::read_to_string(fixtures_dir().join("compat.cf")).unwrap();
    for directive in [
        "header ",
        "body ",
        "rawbody ",
        "uri ",
        "full ",
        "meta ",
        "score ",
        "describe ",
        "tflags ",
        "required_score ",
        "required_hits ",
        "ifplugin ",
        "if ",
        "else",
        "endif",
        "lang ",
        "util_rb_tld ",
        "exists:",
        "!~",
        "[if-unset:",
        "ALL =~",
        "ToCc =~",
        "MESSAGEID =~",
        ":raw",
        ":addr",
        ":name",
        "&&",
        "||",
        "!__",
        " + ",
        ">=",
        "rules_matching(",
        "multiple",
        "maxhits=",
        "nosubject",
        "nice",
    ] {
        assert!(
            rule_file.contains(directive),
            "compat.cf does not use {directive:?}"
        );
    }
    let hit_somewhere: Vec<String> = fixtures().into_iter().flat_map(|f| f.expected).collect();
    for line in rule_file.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        let defines = ["header", "body", "rawbody", "uri", "full", "meta"].contains(&kind);
        let meant_to_miss = ["NEVER_LOADED", "NEVER_ELSE", "RAW_QP_SOFT", "__ZERO_META"];
        if defines && !name.starts_with("__") && !meant_to_miss.contains(&name) {
            assert!(
                hit_somewhere.iter().any(|hit| hit == name),
                "no fixture expects {name} to hit"
            );
        }
    }
}

#[test]
fn default_rules_agree_with_spamassassin() {
    let spam_vdl = Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl/spam.vdl");
    let (disagreements, sie_hits) = compare(&[spam_vdl], &[]);
    assert!(
        disagreements.is_empty(),
        "SIE and SpamAssassin disagree on vdl/spam.vdl:\n{}",
        disagreements.join("\n")
    );
    // The default set means something: the lottery and phishing fixtures are
    // spam under it, the plain reply is not.
    let (rules, _) =
        SpamRules::load_files(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("vdl/spam.vdl")])
            .unwrap();
    for fixture in fixtures() {
        let result = rules.check(&fixture.message);
        match fixture.name.as_str() {
            "02-spam-lottery.eml" | "03-phish-html.eml" | "16-everything.eml" => {
                assert!(result.is_spam(), "{}: {result}", fixture.name);
            }
            "01-ham-reply.eml" | "07-qp-latin1.eml" | "11-many-recipients.eml" => {
                assert!(!result.is_spam(), "{}: {result}", fixture.name);
            }
            _ => {}
        }
    }
    assert!(sie_hits.values().any(|hits| !hits.is_empty()));
}
