//! Logical (`.ldb`) signatures: the expression over subsignature match counts, parsed
//! the way ClamAV 1.4.6 splits it, and the target description block (`Engine`,
//! `Target`, `FileSize`, `Container`, ...).

use super::body::BodyError;

/// Deepest nesting accepted in an expression (ClamAV has no limit; SIE refuses deeper
/// expressions as unsupported rather than risk its stack).
const MAX_DEPTH: usize = 64;

/// Most subsignatures in one logical signature (ClamAV's limit).
pub(crate) const MAX_SUBSIGS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Lt,
}

impl Cmp {
    fn from_byte(b: u8) -> Option<Cmp> {
        match b {
            b'=' => Some(Cmp::Eq),
            b'>' => Some(Cmp::Gt),
            b'<' => Some(Cmp::Lt),
            _ => None,
        }
    }

    fn holds(self, value: u32, limit: u32) -> bool {
        match self {
            Cmp::Eq => value == limit,
            Cmp::Gt => value > limit,
            Cmp::Lt => value < limit,
        }
    }
}

/// A block's count modifier: comparison, count, minimum distinct subsignatures.
type BlockCount = (Cmp, u32, u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Leaf {
        id: u8,
        cmp: Option<(Cmp, u32)>,
    },
    Op {
        and: bool,
        left: Box<Expr>,
        right: Box<Expr>,
        /// `(...)>X,Y`: count modifier on a parenthesised block; `Y` is 0 when absent.
        block: Option<BlockCount>,
    },
}

fn syntax<T>(message: &str) -> Result<T, BodyError> {
    Err(BodyError::Rejected(format!(
        "logical expression: {message}"
    )))
}

/// `sscanf("%u")`: optional leading white space, then digits.
fn scan_u32(text: &[u8]) -> Option<(u32, usize)> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let digits = text[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let value = std::str::from_utf8(&text[start..start + digits])
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some((value.min(u32::MAX as u64) as u32, start + digits))
}

impl Expr {
    /// Parses an expression. Like ClamAV, the first operator outside parentheses
    /// splits it (so `0&1|2` is `0&(1|2)`); a fully parenthesised block splits at its
    /// last operator and may carry a count modifier.
    pub(crate) fn parse(text: &str) -> Result<Expr, BodyError> {
        Self::parse_at(text.as_bytes(), 0)
    }

    fn parse_at(expr: &[u8], depth: usize) -> Result<Expr, BodyError> {
        if depth > MAX_DEPTH {
            return Err(BodyError::Unsupported(
                "logical expression nested too deeply".into(),
            ));
        }
        if expr.is_empty() {
            return syntax("empty expression");
        }
        let len = expr.len();
        let mut level = 0usize;
        let (mut op, mut op_at) = (None::<u8>, 0usize);
        let (mut inner_op, mut inner_at) = (None::<u8>, 0usize);
        let mut leaf_mod: Option<(u8, usize)> = None;
        let mut block: Option<(usize, Option<BlockCount>)> = None;
        let mut i = 0;
        while i < len {
            match expr[i] {
                b'(' => level += 1,
                b')' => {
                    if level == 0 {
                        return syntax("missing opening parenthesis");
                    }
                    level -= 1;
                    leaf_mod = Some((b')', i));
                }
                c @ (b'>' | b'<' | b'=') => leaf_mod = Some((c, i)),
                c @ (b'&' | b'|') => {
                    if level == 0 {
                        op = Some(c);
                        op_at = i;
                    } else if level == 1 {
                        inner_op = Some(c);
                        inner_at = i;
                    }
                }
                _ => {}
            }
            if op.is_some() {
                break;
            }
            if inner_op.is_some() && level == 0 {
                let end = i;
                let mut modifier = None;
                if let Some(cmp) = expr.get(i + 1).copied().and_then(Cmp::from_byte) {
                    let Some((first, used)) = scan_u32(&expr[i + 2..]) else {
                        return syntax("missing number after a count modifier");
                    };
                    let second = match expr.get(i + 2 + used) {
                        Some(b',') => scan_u32(&expr[i + 3 + used..]).map_or(0, |(v, _)| v),
                        _ => 0,
                    };
                    modifier = Some((cmp, first, second));
                    i += 2;
                    while i + 1 < len && (expr[i + 1].is_ascii_digit() || expr[i + 1] == b',') {
                        i += 1;
                    }
                }
                if i + 1 == len {
                    block = Some((end, modifier));
                    break;
                }
            }
            i += 1;
        }
        if level != 0 {
            return syntax("missing closing parenthesis");
        }
        if op.is_none() && inner_op.is_none() {
            if expr[0] == b'(' {
                if len < 2 {
                    return syntax("unbalanced parenthesis");
                }
                return Self::parse_at(&expr[1..len - 1], depth + 1);
            }
            let Some((id, _)) = scan_u32(expr) else {
                return syntax("can't parse a subsignature index");
            };
            if id as usize >= MAX_SUBSIGS {
                return syntax("subsignature index too large");
            }
            let cmp = match leaf_mod {
                Some((c, at)) if c != b')' => {
                    let Some((limit, _)) = scan_u32(&expr[at + 1..]) else {
                        return syntax("missing number after a count modifier");
                    };
                    Some((Cmp::from_byte(c).unwrap_or(Cmp::Eq), limit))
                }
                _ => None,
            };
            return Ok(Expr::Leaf { id: id as u8, cmp });
        }
        let (left, right, block_mod, and) = match op {
            Some(o) => {
                if op_at == 0 {
                    return syntax("missing left argument");
                }
                if op_at + 1 == len {
                    return syntax("missing right argument");
                }
                (&expr[..op_at], &expr[op_at + 1..], None, o == b'&')
            }
            None => {
                let (end, modifier) = match block {
                    Some(b) => b,
                    None => return syntax("operator inside parentheses without a closing block"),
                };
                if inner_at + 1 >= end {
                    return syntax("missing right argument");
                }
                (
                    &expr[1..inner_at],
                    &expr[inner_at + 1..end],
                    modifier,
                    inner_op == Some(b'&'),
                )
            }
        };
        if left.is_empty() {
            return syntax("missing left argument");
        }
        Ok(Expr::Op {
            and,
            left: Box::new(Self::parse_at(left, depth + 1)?),
            right: Box::new(Self::parse_at(right, depth + 1)?),
            block: block_mod,
        })
    }

    /// The highest subsignature index used.
    pub(crate) fn max_id(&self) -> u8 {
        match self {
            Expr::Leaf { id, .. } => *id,
            Expr::Op { left, right, .. } => left.max_id().max(right.max_id()),
        }
    }

    /// Evaluates against match counts, ClamAV's way: returns whether it holds, and
    /// adds the counts and the set of subsignatures that made it hold.
    pub(crate) fn eval(&self, counts: &[u32], cnt: &mut u32, ids: &mut u64) -> bool {
        match self {
            Expr::Leaf { id, cmp } => {
                let value = counts.get(*id as usize).copied().unwrap_or(0);
                let holds = match cmp {
                    Some((c, limit)) => c.holds(value, *limit),
                    None => value > 0,
                };
                if holds {
                    *cnt = cnt.saturating_add(value);
                    *ids |= 1u64 << id;
                }
                holds
            }
            Expr::Op {
                and,
                left,
                right,
                block,
            } => {
                let (mut lcnt, mut rcnt, mut lids, mut rids) = (0, 0, 0, 0);
                let l = left.eval(counts, &mut lcnt, &mut lids);
                let r = right.eval(counts, &mut rcnt, &mut rids);
                let holds = if *and { l && r } else { l || r };
                let (total, set) = if holds {
                    (lcnt.saturating_add(rcnt), lids | rids)
                } else {
                    (0, 0)
                };
                match block {
                    None => {
                        if holds {
                            *cnt = cnt.saturating_add(total);
                            *ids |= set;
                        }
                        holds
                    }
                    Some((c, limit, distinct)) => {
                        if !c.holds(total, *limit) || set.count_ones() < *distinct {
                            return false;
                        }
                        *cnt = cnt.saturating_add(total);
                        true
                    }
                }
            }
        }
    }

    pub(crate) fn holds(&self, counts: &[u32]) -> bool {
        let (mut cnt, mut ids) = (0, 0);
        self.eval(counts, &mut cnt, &mut ids)
    }
}

/// What the target description block says about the signature.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Tdb {
    pub(crate) target: u32,
    pub(crate) engine: Option<(u32, u32)>,
    pub(crate) file_size: Option<(u64, u64)>,
    pub(crate) container: Option<String>,
    /// Attributes ClamAV knows but SIE does not implement.
    pub(crate) unsupported: Vec<&'static str>,
}

/// Outcome of reading a TDB.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TdbResult {
    Ok(Tdb),
    /// ClamAV skips the signature without a word (unknown attribute).
    Skip,
}

fn range_u64(value: &str) -> Option<(u64, u64)> {
    let (lo, hi) = value.split_once('-')?;
    Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
}

impl Tdb {
    /// Parses `Key:Value,...` with ClamAV 1.4.6's rules (measured): `Engine` must come
    /// first, attributes other than `Target`/`Engine` need `Engine` 51 or later,
    /// `Target` is required, an unknown attribute makes ClamAV skip the signature.
    pub(crate) fn parse(text: &str) -> Result<TdbResult, BodyError> {
        let mut tdb = Tdb::default();
        let mut target = None;
        let mut newer = false;
        for (i, attr) in text.split(',').enumerate() {
            let Some((key, value)) = attr.split_once(':') else {
                return Err(BodyError::Rejected(format!(
                    "TDB attribute without value: {attr:?}"
                )));
            };
            match key {
                "Engine" => {
                    if i != 0 {
                        return Err(BodyError::Rejected(
                            "the Engine attribute must be on the first position".into(),
                        ));
                    }
                    let (lo, hi) = range_u64(value).ok_or_else(|| {
                        BodyError::Rejected("incorrect parameters in 'Engine'".into())
                    })?;
                    tdb.engine = Some((
                        lo.min(u32::MAX as u64) as u32,
                        hi.min(u32::MAX as u64) as u32,
                    ));
                }
                "Target" => {
                    let t: u32 = value
                        .parse()
                        .map_err(|_| BodyError::Rejected("invalid argument for Target".into()))?;
                    target = Some(t);
                }
                "FileSize" => {
                    newer = true;
                    tdb.file_size = Some(range_u64(value).ok_or_else(|| {
                        BodyError::Rejected("incorrect parameters in 'FileSize'".into())
                    })?);
                }
                "Container" => {
                    newer = true;
                    tdb.container = Some(value.to_string());
                }
                "EntryPoint" | "NumberOfSections" => {
                    newer = true;
                    tdb.unsupported.push(if key == "EntryPoint" {
                        "EntryPoint"
                    } else {
                        "NumberOfSections"
                    });
                }
                "Intermediates" | "IconGroup1" | "IconGroup2" | "HandlerType" => {
                    newer = true;
                    tdb.unsupported.push(match key {
                        "Intermediates" => "Intermediates",
                        "IconGroup1" => "IconGroup1",
                        "IconGroup2" => "IconGroup2",
                        _ => "HandlerType",
                    });
                }
                _ => return Ok(TdbResult::Skip),
            }
        }
        if newer && tdb.engine.is_none_or(|(lo, _)| lo < 51) {
            return Err(BodyError::Rejected(
                "signatures using new attributes need Engine with a minimum of at least 51".into(),
            ));
        }
        tdb.target =
            target.ok_or_else(|| BodyError::Rejected("no target specified in TDB".into()))?;
        Ok(TdbResult::Ok(tdb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(expr: &str, counts: &[u32]) -> bool {
        Expr::parse(expr).unwrap().holds(counts)
    }

    #[test]
    fn and_or_and_parentheses() {
        assert!(holds("0&1", &[1, 1]));
        assert!(!holds("0&1", &[1, 0]));
        assert!(holds("0|1", &[0, 1]));
        assert!(holds("(0|1)&2", &[0, 1, 1]));
        assert!(!holds("(0|1)&2", &[1, 1, 0]));
        assert!(holds("0 & 1", &[1, 1]));
        // First top-level operator splits: 0&1|2 is 0&(1|2).
        assert!(!holds("0&1|2", &[0, 0, 1]));
        assert!(holds("0&1|2", &[1, 0, 1]));
    }

    #[test]
    fn count_modifiers_as_measured() {
        assert!(holds("0=2", &[2]));
        assert!(!holds("0=2", &[3]));
        assert!(holds("0>2", &[3]));
        assert!(!holds("0>2", &[2]));
        assert!(holds("0<3", &[0]));
        assert!(!holds("0<3", &[3]));
        assert!(holds("0&1=0", &[1, 0]));
        assert!(!holds("0&1=0", &[1, 1]));
        // Block: at least 2 matches from at least 2 different subsignatures.
        assert!(holds("(0|1|2)>1,2", &[1, 1, 0]));
        assert!(!holds("(0|1|2)>1,2", &[2, 0, 0]));
        assert!(holds("(0|1|2)>1", &[2, 0, 0]));
    }

    #[test]
    fn max_id_and_syntax_errors() {
        assert_eq!(Expr::parse("(0|1)&2").unwrap().max_id(), 2);
        for bad in ["0&&1", "&1", "0&", "(0|1", "0|1)", "", "a", "()"] {
            assert!(Expr::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "(".repeat(200) + "0" + &")".repeat(200);
        assert!(matches!(Expr::parse(&deep), Err(BodyError::Unsupported(_))));
    }

    #[test]
    fn tdb_rules_as_measured() {
        let ok = |t: &str| match Tdb::parse(t) {
            Ok(TdbResult::Ok(tdb)) => tdb,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(ok("Target:0").target, 0);
        assert_eq!(
            ok("Engine:51-255,Target:0,FileSize:1-100").file_size,
            Some((1, 100))
        );
        assert_eq!(
            ok("Engine:51-255,Target:0,Container:CL_TYPE_ZIP")
                .container
                .as_deref(),
            Some("CL_TYPE_ZIP")
        );
        assert_eq!(Tdb::parse("Target:0,Foo:1").unwrap(), TdbResult::Skip);
        for bad in [
            "Target:0,FileSize:1-100",
            "Engine:50-255,Target:0,FileSize:1-100",
            "Target:0,Engine:51-255",
            "Engine:51,Target:0",
            "Engine:51-255,Target:0-4",
            "Engine:51-255,Target:0,FileSize:100",
            "Engine:51-255",
        ] {
            assert!(Tdb::parse(bad).is_err(), "{bad}");
        }
    }
}
