//! Tests of the rule engine as a whole: every directive and modifier against small
//! messages, scoring, metas, problems, and never-panic properties.

use proptest::prelude::*;

use super::*;

fn rules(text: &str) -> SpamRules {
    let (rules, problems) = SpamRules::from_text("t.cf", text);
    assert!(problems.is_empty(), "{problems:?}");
    rules
}

fn hits(rules: &SpamRules, message: &str) -> Vec<String> {
    rules
        .check(message.as_bytes())
        .hits
        .into_iter()
        .map(|hit| hit.name)
        .collect()
}

const PLAIN: &str = "From: \"Ann Example\" <ann@example.com>\n\
    To: bob@example.org\n\
    Subject: WIN CASH NOW\n\
    Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
    Content-Type: text/html\n\
    \n\
    <p>Click <a href=\"http://192.168.0.1/x\">here</a> to claim your prize.</p>\n";

#[test]
fn header_match_negation_and_existence() {
    let rules = rules(
        "header SUBJ Subject =~ /cash/i\n\
         header NO_MID exists:Message-Id\n\
         header HAS_DATE exists:Date\n\
         header NOT_FROM_X From !~ /x\\.example/\n\
         header MISSING_NEG X-Mailer !~ /./\n\
         header MISSING_POS X-Mailer =~ /^$/\n\
         header UNSET X-Mailer =~ /^none$/ [if-unset: none]\n\
         header ALLH ALL =~ /^To: bob\\@example\\.org$/m\n\
         header RAW Subject:raw =~ /^ WIN/\n\
         header ADDR From:addr =~ /^ann\\@example\\.com$/\n\
         header NAME From:name =~ /^Ann Example$/\n",
    );
    assert_eq!(
        hits(&rules, PLAIN),
        [
            "ADDR",
            "ALLH",
            "HAS_DATE",
            "MISSING_NEG",
            "MISSING_POS",
            "NAME",
            "NOT_FROM_X",
            "RAW",
            "SUBJ",
            "UNSET"
        ]
    );
}

#[test]
fn body_rawbody_uri_and_full() {
    let rules = rules(
        "body CLAIM /click here to claim/i\n\
         body SUBJECT_IN_BODY /^WIN CASH/\n\
         body NOSUBJ /^WIN CASH/\n\
         tflags NOSUBJ nosubject\n\
         rawbody RAW_TAG /<a href=/\n\
         body NO_TAG_IN_BODY /<a href=/\n\
         uri IP_LINK m{^https?://\\d+\\.\\d+\\.\\d+\\.\\d+}\n\
         full FULL_CT /^Content-Type: text\\/html$/m\n",
    );
    assert_eq!(
        hits(&rules, PLAIN),
        ["CLAIM", "FULL_CT", "IP_LINK", "RAW_TAG", "SUBJECT_IN_BODY"]
    );
}

#[test]
fn meta_boolean_and_arithmetic() {
    let rules = rules(
        "header __A Subject =~ /WIN/\n\
         header __B Subject =~ /CASH/\n\
         header __C Subject =~ /nothing/\n\
         meta AND (__A && __B)\n\
         meta OR (__C || __B)\n\
         meta NOT !__C\n\
         meta PAREN (__A && !(__B || __C))\n\
         meta SUM (__A + __B + __C) > 1\n\
         meta SUM3 (__A + __B + __C) >= 3\n\
         meta CHAIN (SUM && NOT)\n",
    );
    assert_eq!(hits(&rules, PLAIN), ["AND", "CHAIN", "NOT", "OR", "SUM"]);
}

#[test]
fn scores_descriptions_and_threshold() {
    let rules = rules(
        "body A /claim/\nscore A 2.5\ndescribe A Claims a prize\n\
         body B /prize/\nscore B 1.5 0 0 0\n\
         body T_NEW /prize/\n\
         body NICE /prize/\ntflags NICE nice\n\
         body DEFAULT /claim/\n\
         body OFF /claim/\nscore OFF 0\n\
         body REL /claim/\nscore REL 1\nscore REL (0.5)\n\
         required_score 5.5\n",
    );
    let result = rules.check(PLAIN.as_bytes());
    let names: Vec<&str> = result.hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "DEFAULT", "NICE", "REL", "T_NEW"]);
    assert_eq!(result.hits[0].description, "Claims a prize");
    assert_eq!(result.hits[1].description, "No description available.");
    assert_eq!(result.hits[3].score, -1.0);
    assert_eq!(result.hits[5].score, 0.01);
    assert!((result.score - 5.51).abs() < 1e-9, "{}", result.score);
    assert_eq!(result.threshold, 5.5);
    assert!(result.is_spam());
    assert!(rules.is_spam(&result));
    assert_eq!(
        result.to_string(),
        "score=5.5 required=5.5 tests=A,B,DEFAULT,NICE,REL,T_NEW"
    );
}

#[test]
fn threshold_is_reached_at_equality_and_defaults_to_five() {
    let rules = rules("body A /claim/\nscore A 5\n");
    let result = rules.check(PLAIN.as_bytes());
    assert_eq!(result.threshold, 5.0);
    assert!(result.is_spam());
    let rules = self::rules("body A /claim/\nscore A 4.99\nrequired_hits 4.99\n");
    assert!(rules.check(PLAIN.as_bytes()).is_spam());
    let rules = self::rules("body A /claim/\nscore A 4.98\nrequired_hits 4.99\n");
    assert!(!rules.check(PLAIN.as_bytes()).is_spam());
}

#[test]
fn sub_rules_are_not_listed_or_scored() {
    let rules = rules("body __SUB /claim/\nmeta TOP __SUB\nscore TOP 3\n");
    let result = rules.check(PLAIN.as_bytes());
    assert_eq!(result.hits.len(), 1);
    assert_eq!(result.hits[0].name, "TOP");
    assert_eq!(result.score, 3.0);
}

#[test]
fn multiple_counts_hits_for_metas() {
    let rules = rules(
        "body __WORD /\\b[a-z]+\\b/\ntflags __WORD multiple maxhits=4\n\
         meta MANY __WORD > 3\nmeta TOO_MANY __WORD > 4\n\
         body __ONCE /\\b[a-z]+\\b/\nmeta ONCE_ONLY __ONCE > 1\n",
    );
    assert_eq!(hits(&rules, PLAIN), ["MANY"]);
}

#[test]
fn net_and_learn_rules_are_inactive() {
    let rules = rules(
        "body NET /claim/\ntflags NET net\n\
         body LEARN /claim/\ntflags LEARN learn\n\
         meta USES_NET NET || LEARN\n\
         meta NOT_NET !NET\n",
    );
    assert_eq!(hits(&rules, PLAIN), ["NOT_NET"]);
}

#[test]
fn metas_over_unscored_metas_follow_spamassassin_scheduling() {
    // An unscored meta that evaluates true is never marked ready, so metas
    // reading it are never evaluated; one that evaluates false is ready (0).
    let rules = rules(
        "meta __TRUE 1\nscore __TRUE 0\nmeta READS_TRUE !__TRUE\n\
         meta __FALSE 0\nscore __FALSE 0\nmeta READS_FALSE !__FALSE\n\
         body OFF /claim/\nscore OFF 0\nmeta READS_OFF !OFF\n\
         meta READS_UNDEFINED !NOT_DEFINED_ANYWHERE\n",
    );
    assert_eq!(
        hits(&rules, PLAIN),
        ["READS_FALSE", "READS_OFF", "READS_UNDEFINED"]
    );
}

#[test]
fn unsupported_rules_are_reported_with_file_and_line() {
    let (rules, problems) = SpamRules::from_text(
        "local.cf",
        "body OK /claim/\n\
         body LOOKAHEAD /claim(?= your)/\n\
         body EVAL eval:check_stock_info()\n\
         meta USES_EVAL EVAL && OK\n\
         meta USES_USES USES_EVAL\n\
         header RELAYS X-Spam-Relays-Untrusted =~ /rdns=/\n\
         meta CYCLE_A CYCLE_B\nmeta CYCLE_B CYCLE_A\n",
    );
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems[0].starts_with("local.cf:2: rule LOOKAHEAD skipped: lookahead"),
        "{problems:?}"
    );
    assert!(problems[1].starts_with("local.cf:3: rule EVAL skipped: eval test check_stock_info()"));
    assert!(problems[2].starts_with("local.cf:6: rule RELAYS skipped: pseudo-header"));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("local.cf:4: rule USES_EVAL skipped: it depends on EVAL"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("local.cf:5: rule USES_USES skipped: it depends on USES_EVAL"))
    );
    assert!(problems.iter().any(|p| p.contains("cycle")));
    assert_eq!(hits(&rules, PLAIN), ["OK"]);
}

#[test]
fn uris_from_text_and_html() {
    let rules = rules(
        "uri WWW /^http:\\/\\/www\\.example\\.net/\n\
         uri MAILTO /^mailto:sales\\@example\\.org$/\n\
         uri HREF /^https:\\/\\/shop\\.example\\.com\\/buy$/\n\
         uri RELATIVE /^http:\\/\\/base\\.example\\.com\\/dir\\/next$/\n",
    );
    let message = "Subject: links\nContent-Type: multipart/alternative; boundary=b\n\n\
        --b\nContent-Type: text/plain\n\nSee www.example.net/page or write sales@example.org.\n\
        --b\nContent-Type: text/html\n\n<base href=\"http://base.example.com/dir/index.html\">\
        <a href=\"https://shop.example.com/buy\">buy</a><a href=\"next\">next</a>\n--b--\n";
    assert_eq!(hits(&rules, message), ["HREF", "MAILTO", "RELATIVE", "WWW"]);
    let texts = rules.rule_texts(message.as_bytes());
    assert!(
        texts
            .uris
            .contains(&b"http://www.example.net/page".to_vec())
    );
}

#[test]
fn broken_messages_are_checked_without_panic() {
    let rules = rules("body ANY /./\nheader SUBJ exists:Subject\n");
    for message in [
        &b""[..],
        b"\n",
        b"\x00\xff\xfe",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nno end",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n",
        b"Content-Type: text/html\n\n<a href=\"",
        b"Content-Type: text/html\n\n<!--",
        b"Subject: =?utf-8?B?####?=\n\nx",
    ] {
        let result = rules.check(message);
        assert!(
            result
                .hits
                .iter()
                .all(|hit| hit.name != "SIE_SPAM_CHECK_FAILED")
        );
    }
}

#[test]
fn deeply_nested_messages_stay_bounded() {
    let mut message = String::new();
    for level in 0..5_000 {
        message.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n"
        ));
    }
    message.push_str("Content-Type: text/plain\n\ndeep text\n");
    let rules = rules("body DEEP /deep text/\n");
    let check = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || rules.check(message.as_bytes()))
        .unwrap();
    let result = check.join().unwrap();
    assert!(
        result.hits.is_empty(),
        "nesting stops at 20 levels, as in SpamAssassin"
    );
}

#[test]
fn rules_are_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<SpamRules>();
    shared::<SpamResult>();
}

#[test]
fn empty_rule_set() {
    let rules = SpamRules::empty();
    assert!(rules.is_empty());
    let result = rules.check(PLAIN.as_bytes());
    assert_eq!(
        (result.score, result.threshold, result.hits.len()),
        (0.0, 5.0, 0)
    );
}

#[test]
fn load_dir_reads_spam_vdl_then_cf_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spam.vdl"), "body A /claim/\nscore A 1\n").unwrap();
    std::fs::write(dir.path().join("20_b.cf"), "score A 3\n").unwrap();
    std::fs::write(dir.path().join("10_a.cf"), "score A 2\nbody B /prize/\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "garbage\n").unwrap();
    let (rules, problems) = SpamRules::load_dir(dir.path()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let result = rules.check(PLAIN.as_bytes());
    assert_eq!(result.score, 4.0);
    assert!(SpamRules::load_dir(&dir.path().join("missing")).is_err());
}

/// Pieces of rule syntax, so random lines reach deep into the parser.
fn rule_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("body ".to_string()),
        Just("header ".to_string()),
        Just("meta ".to_string()),
        Just("uri ".to_string()),
        Just("score ".to_string()),
        Just("tflags ".to_string()),
        Just("if ".to_string()),
        Just("endif".to_string()),
        Just("R1 ".to_string()),
        Just("Subject =~ ".to_string()),
        Just("exists:".to_string()),
        Just("/".to_string()),
        Just("(?".to_string()),
        Just("[".to_string()),
        Just("\\".to_string()),
        Just("{2,".to_string()),
        Just(" && ".to_string()),
        Just(" + ".to_string()),
        Just(")".to_string()),
        Just("\n".to_string()),
        "[ -~]{0,12}",
    ]
}

fn message_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Content-Type: multipart/mixed; boundary=b\n".to_string()),
        Just("Content-Type: message/rfc822\n".to_string()),
        Just("Content-Type: text/html; charset=iso-8859-1\n".to_string()),
        Just("Content-Transfer-Encoding: base64\n".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable\n".to_string()),
        Just("Subject: =?utf-8?q?=C3=A9?=\n".to_string()),
        Just("\n".to_string()),
        Just("--b\n".to_string()),
        Just("--b--\n".to_string()),
        Just("<a href=\"http://x.example.com/\">".to_string()),
        Just("&#x263a;&eacute;<p>".to_string()),
        Just("www.example.com mail@example.org ".to_string()),
        "[ -~]{0,40}\n",
        "[\\x00-\\xff]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_rule_files_never_panic(fragments in prop::collection::vec(rule_fragment(), 0..60)) {
        let (rules, _) = SpamRules::from_text("fuzz.cf", &fragments.concat());
        let _ = rules.check(PLAIN.as_bytes());
    }

    #[test]
    fn arbitrary_messages_never_panic(fragments in prop::collection::vec(message_fragment(), 0..80)) {
        let rules = rules(
            "body B /./\nrawbody R /./\nuri U /./\nfull F /./\nheader H ALL =~ /./\nheader N From:name =~ /./\nmeta M B + R + U > 1\n",
        );
        let result = rules.check(fragments.concat().as_bytes());
        prop_assert!(result.hits.iter().all(|hit| hit.name != "SIE_SPAM_CHECK_FAILED"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let rules = rules("body B /./\nuri U /./\nheader H ALL:raw =~ /./\n");
        let _ = rules.check(&bytes);
        let _ = rules.rule_texts(&bytes);
    }
}

/// Patterns of `body` rules, some case-insensitive, one starting with a class and
/// one with a word boundary that the prefilter's stops must not break.
const FILTERED: [&str; 4] = [
    r"(?i)\bclaim your (?:prize|reward)\b",
    r"\b\d+ (?:million|billion) dollars",
    r"(?i)act now",
    r"[xy]z{2,}",
];

#[test]
fn body_filter_has_its_own_start_prefilter() {
    assert!(start_prefilter(&FILTERED).is_some());
    // A pattern that may start with any byte leaves the choice to the set.
    assert!(start_prefilter(&[r"(?i)act now", r".*free"]).is_none());
    assert!(start_prefilter(&[r"a", r"(?:x)?"]).is_none());
}

proptest! {
    #[test]
    fn body_filter_agrees_with_a_regex_set(
        lines in proptest::collection::vec(
            proptest::collection::vec(
                proptest::sample::select(vec![
                    "claim your prize", "CLAIM YOUR Reward", "xclaim your prize", "12",
                    "5 million dollars", " ", "aCt NoW", "xzz", "yz", "z", ".", "\n",
                ]),
                0..8,
            )
            .prop_map(|words| words.concat().into_bytes()),
            1..5,
        )
    ) {
        let rules: Vec<Rule> = FILTERED
            .iter()
            .enumerate()
            .map(|(id, pattern)| Rule {
                id,
                kind: Kind::Body(
                    regex::bytes::RegexBuilder::new(pattern)
                        .unicode(false)
                        .build()
                        .unwrap(),
                ),
                quick: None,
                multiple: false,
                max_hits: None,
                no_subject: false,
            })
            .collect();
        let filter = BodyFilter::new(&rules).unwrap();
        let found = filter.matches(&lines);
        let set = regex::bytes::RegexSetBuilder::new(FILTERED)
            .unicode(false)
            .build()
            .unwrap();
        let mut expected = (vec![false; FILTERED.len()], vec![false; FILTERED.len()]);
        for (index, line) in lines.iter().enumerate() {
            let seen = if index == 0 { &mut expected.0 } else { &mut expected.1 };
            for member in set.matches(line).iter() {
                seen[member] = true;
            }
        }
        prop_assert_eq!((found.subject, found.rest), expected);
    }
}
