//! `meta` expressions: SpamAssassin's lexer (`ARITH_EXPRESSION_LEXER`) and token check
//! (`is_meta_valid`), then a parser with Perl's precedence and an evaluator with Perl's
//! values: a rule stands for its hit count (0 when it did not hit), `&&` and `||`
//! return an operand, `!` and comparisons give 1 or 0, and the meta hits when the
//! result is not 0.
//!
//! Supported: rule names, numbers, `( )`, `! && || ^ ?: + - * /` and `== != < <= > >=`,
//! `rules_matching(GLOB)`, and `local_tests_only` (always 1: SIE makes no network
//! tests). Division by zero makes the rule invalid when it already happens with every
//! rule at 0 (as SpamAssassin's check does), and makes the meta miss otherwise.

/// A parsed meta expression and the rule names it reads, in order of first use.
#[derive(Debug, Clone)]
pub struct Meta {
    expr: Expr,
    pub deps: Vec<String>,
}

#[derive(Debug, Clone)]
enum Expr {
    Num(f64),
    /// Index into `Meta::deps`.
    Rule(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Or,
    And,
    Xor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl Meta {
    /// Parses `text`, the expression of rule `name`. `rules_matching` expands a glob
    /// (`FOO_*`) into the names it stands for.
    pub fn parse(
        name: &str,
        text: &str,
        rules_matching: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<Meta, String> {
        if text.contains("::")
            || text.contains("->")
            || text.contains(['$', '@', '%', ';', '{', '}'])
        {
            return Err(format!("invalid meta {name} rule: {text}"));
        }
        if has_double_star(text) {
            return Err("invalid '**' or '* *' operator in meta".to_string());
        }
        let expanded = expand_rules_matching(name, text, rules_matching);
        let tokens = lex(&expanded);
        for token in &tokens {
            let valid = is_rule_name(token)
                || is_number(token)
                || (token.len() <= 2 && token.bytes().all(|b| b.is_ascii_punctuation()));
            if !valid {
                return Err(format!("invalid meta {name} token: {token}"));
            }
        }
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            deps: Vec::new(),
        };
        let expr = parser.expression()?;
        if let Some(extra) = tokens.get(parser.pos) {
            return Err(format!("syntax error in meta {name} near '{extra}'"));
        }
        let meta = Meta {
            expr,
            deps: parser.deps,
        };
        if meta.eval(&|_| 0.0).is_none() {
            return Err(format!(
                "invalid expression for rule {name}: \"{text}\": division by zero possible"
            ));
        }
        Ok(meta)
    }

    /// The expression's value given each dependency's hit count (by index into
    /// `deps`); `None` on a division by zero.
    pub fn eval(&self, count: &dyn Fn(usize) -> f64) -> Option<f64> {
        eval(&self.expr, count)
    }
}

fn has_double_star(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(index, &byte)| {
        byte == b'*'
            && bytes[index + 1..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&next| next == b'*')
    })
}

pub fn is_rule_name(token: &str) -> bool {
    let bytes = token.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn is_number(token: &str) -> bool {
    let (int, frac) = token.split_once('.').unwrap_or((token, "1"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac)
}

/// `rules_matching(GLOB)` becomes `(A+B+...)` over the rules the glob names, or
/// `(0)` when none; as in SpamAssassin, a rule never matches itself.
fn expand_rules_matching(
    name: &str,
    text: &str,
    rules_matching: &dyn Fn(&str) -> Vec<String>,
) -> String {
    const CALL: &str = "rules_matching(";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(CALL) {
        let before = &rest[..at];
        let standalone = !before
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        let after = &rest[at + CALL.len()..];
        let glob_end = after.find(')');
        match glob_end {
            Some(end) if standalone => {
                let glob = after[..end].trim();
                let valid = !glob.is_empty()
                    && glob
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b'?'));
                if valid {
                    let mut names: Vec<String> = rules_matching(glob)
                        .into_iter()
                        .filter(|rule| rule != name)
                        .collect();
                    names.sort();
                    let sum = if names.is_empty() {
                        "0".to_string()
                    } else {
                        names.join("+")
                    };
                    out.push_str(before);
                    out.push_str(&format!(" ({sum}) "));
                    rest = &after[end + 1..];
                    continue;
                }
                out.push_str(&rest[..at + CALL.len()]);
                rest = after;
            }
            _ => {
                out.push_str(&rest[..at + CALL.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `name` matches a rule glob (`*` any run, `?` one character).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    fn matches(glob: &[u8], name: &[u8]) -> bool {
        match glob.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|skip| matches(rest, &name[skip..])),
            Some((b'?', rest)) => !name.is_empty() && matches(rest, &name[1..]),
            Some((&byte, rest)) => name.first() == Some(&byte) && matches(rest, &name[1..]),
        }
    }
    matches(glob.as_bytes(), name.as_bytes())
}

/// SpamAssassin's lexer: the first alternative that matches at each position wins and
/// characters no alternative matches are skipped.
fn lex(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = if matches!(rest[0], b'-' | b'+' | b'.' | b'0'..=b'9') {
            rest.iter()
                .take_while(|b| matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9'))
                .count()
        } else if is_word(rest[0]) {
            1 + rest[1..]
                .iter()
                .take_while(|&&b| is_word(b) || b == b':')
                .count()
        } else if rest.starts_with(b"||")
            || rest.starts_with(b"&&")
            || rest.starts_with(b">=")
            || rest.starts_with(b"<=")
            || rest.starts_with(b"==")
            || rest.starts_with(b"!=")
        {
            2
        } else if matches!(
            rest[0],
            b'(' | b')' | b'^' | b'!' | b'>' | b'<' | b'*' | b'/' | b'?' | b':'
        ) {
            1
        } else {
            pos += 1;
            continue;
        };
        tokens.push(text[pos..pos + len].to_string());
        pos += len;
    }
    tokens
}

struct Parser<'t> {
    tokens: &'t [String],
    pos: usize,
    deps: Vec<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        let condition = self.binary(0)?;
        if !self.eat("?") {
            return Ok(condition);
        }
        let then = self.expression()?;
        if !self.eat(":") {
            return Err("missing ':' in '? :' of meta".to_string());
        }
        let otherwise = self.expression()?;
        Ok(Expr::Cond(
            Box::new(condition),
            Box::new(then),
            Box::new(otherwise),
        ))
    }

    /// Binary operators by Perl precedence, loosest first; `==` and `<` levels do
    /// not chain.
    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        const LEVELS: [&[(&str, Op)]; 7] = [
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[("^", Op::Xor)],
            &[("==", Op::Eq), ("!=", Op::Ne)],
            &[("<", Op::Lt), ("<=", Op::Le), (">", Op::Gt), (">=", Op::Ge)],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div)],
        ];
        let Some(operators) = LEVELS.get(level) else {
            return self.unary();
        };
        let chains = level != 3 && level != 4;
        let mut left = self.binary(level + 1)?;
        loop {
            let found = operators
                .iter()
                .find(|(token, _)| self.peek() == Some(token));
            let Some(&(_, op)) = found else {
                return Ok(left);
            };
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
            if !chains {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(token) = self.peek() else {
            return Err("meta expression ends early".to_string());
        };
        let token = token.to_string();
        self.pos += 1;
        if token == "(" {
            if self.eat(")") {
                return Ok(Expr::Num(0.0));
            }
            let inner = self.expression()?;
            if !self.eat(")") {
                return Err("missing ')' in meta".to_string());
            }
            return Ok(inner);
        }
        if is_number(&token) {
            return Ok(Expr::Num(token.parse().unwrap_or(0.0)));
        }
        if token == "local_tests_only" {
            return Ok(Expr::Num(1.0));
        }
        if is_rule_name(&token) {
            let index = match self.deps.iter().position(|dep| *dep == token) {
                Some(index) => index,
                None => {
                    self.deps.push(token);
                    self.deps.len() - 1
                }
            };
            return Ok(Expr::Rule(index));
        }
        Err(format!("syntax error in meta near '{token}'"))
    }
}

fn truth(value: f64) -> f64 {
    if value != 0.0 { 1.0 } else { 0.0 }
}

/// Perl's numeric `^`: both sides as unsigned integers.
fn to_uv(value: f64) -> u64 {
    if value < 0.0 {
        value as i64 as u64
    } else {
        value as u64
    }
}

fn eval(expr: &Expr, count: &dyn Fn(usize) -> f64) -> Option<f64> {
    Some(match expr {
        Expr::Num(value) => *value,
        Expr::Rule(index) => count(*index),
        Expr::Not(inner) => 1.0 - truth(eval(inner, count)?),
        Expr::Neg(inner) => -eval(inner, count)?,
        Expr::Cond(condition, then, otherwise) => {
            if eval(condition, count)? != 0.0 {
                eval(then, count)?
            } else {
                eval(otherwise, count)?
            }
        }
        Expr::Binary(Op::And, left, right) => {
            let left = eval(left, count)?;
            if left == 0.0 {
                left
            } else {
                eval(right, count)?
            }
        }
        Expr::Binary(Op::Or, left, right) => {
            let left = eval(left, count)?;
            if left != 0.0 {
                left
            } else {
                eval(right, count)?
            }
        }
        Expr::Binary(op, left, right) => {
            let (a, b) = (eval(left, count)?, eval(right, count)?);
            let compare = |holds: bool| if holds { 1.0 } else { 0.0 };
            match op {
                Op::Xor => (to_uv(a) ^ to_uv(b)) as f64,
                Op::Eq => compare(a == b),
                Op::Ne => compare(a != b),
                Op::Lt => compare(a < b),
                Op::Le => compare(a <= b),
                Op::Gt => compare(a > b),
                Op::Ge => compare(a >= b),
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div if b == 0.0 => return None,
                Op::Div => a / b,
                Op::And | Op::Or => unreachable!("handled above"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn value(text: &str, hits: &[(&str, f64)]) -> f64 {
        let meta = Meta::parse("M", text, &none).unwrap_or_else(|e| panic!("{text}: {e}"));
        let count = |index: usize| {
            hits.iter()
                .find(|(name, _)| *name == meta.deps[index])
                .map_or(0.0, |(_, count)| *count)
        };
        meta.eval(&count).unwrap()
    }

    #[test]
    fn boolean_operators() {
        assert_eq!(value("A && B", &[("A", 1.0), ("B", 1.0)]), 1.0);
        assert_eq!(value("A && B", &[("A", 1.0)]), 0.0);
        assert_eq!(value("A || B", &[("B", 1.0)]), 1.0);
        assert_eq!(value("!A", &[]), 1.0);
        assert_eq!(value("!A", &[("A", 2.0)]), 0.0);
        assert_eq!(value("A && !(B || C)", &[("A", 1.0), ("C", 1.0)]), 0.0);
        assert_eq!(value("(A && !B) || C", &[("A", 1.0)]), 1.0);
    }

    #[test]
    fn arithmetic_and_comparisons() {
        let hits = [("A", 1.0), ("C", 1.0)];
        assert_eq!(value("(A + B + C) > 1", &hits), 1.0);
        assert_eq!(value("(A + B + C) > 2", &hits), 0.0);
        assert_eq!(value("A + B + C >= 2", &hits), 1.0);
        assert_eq!(value("A * 2 + 1 == 3", &hits), 1.0);
        assert_eq!(value("(A + C) / 2", &hits), 1.0);
        assert_eq!(value("A - C", &hits), 0.0);
        assert_eq!(value("A ^ C", &hits), 0.0);
        assert_eq!(value("A ? 5 : 7", &hits), 5.0);
        assert_eq!(value("!A + 1", &hits), 1.0, "! binds tighter than +");
        assert_eq!(value("()", &hits), 0.0);
        assert_eq!(value("local_tests_only", &[]), 1.0);
    }

    #[test]
    fn and_or_return_operands_like_perl() {
        assert_eq!(value("A && B", &[("A", 1.0), ("B", 3.0)]), 3.0);
        assert_eq!(value("A || B", &[("A", 2.0), ("B", 3.0)]), 2.0);
    }

    #[test]
    fn invalid_expressions_are_refused() {
        for text in [
            "A B",
            "A +1",
            "A -1",
            "A ** 2",
            "A * * 2",
            "A / B",
            "A / 0",
            "$x",
            "A; B",
            "Foo::Bar",
            "(A",
            "A &&",
            "A == B == C",
            "A ? B",
        ] {
            assert!(Meta::parse("M", text, &none).is_err(), "{text}");
        }
        assert!(Meta::parse("M", "A / (B + 1)", &none).is_ok());
    }

    #[test]
    fn division_by_zero_at_run_time_is_no_value() {
        let meta = Meta::parse("M", "A / (B - 1)", &none).unwrap();
        let count = |index: usize| if meta.deps[index] == "B" { 1.0 } else { 0.0 };
        assert_eq!(meta.eval(&count), None);
    }

    #[test]
    fn rules_matching_expands_globs_without_self() {
        let rules = |glob: &str| {
            ["FOO_A", "FOO_B", "BAR", "M"]
                .into_iter()
                .filter(|name| glob_matches(glob, name))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let meta = Meta::parse("FOO_M", "rules_matching(FOO_*) > 1", &rules).unwrap();
        assert_eq!(meta.deps, ["FOO_A", "FOO_B"]);
        let meta = Meta::parse("M", "rules_matching(NONE_*)", &rules).unwrap();
        assert!(meta.deps.is_empty());
        assert!(glob_matches("F?O_*", "FOO_X"));
        assert!(!glob_matches("FOO_*", "XFOO_X"));
    }
}
