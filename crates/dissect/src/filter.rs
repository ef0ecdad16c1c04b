//! Display filters (`-Y`): `proto`, `field`, `field OP value` with
//! `== != > < >= <=` (and `eq ne gt lt ge le contains`), combined with
//! `&&`/`and`, `||`/`or`, `!`/`not` and parentheses. A comparison holds
//! when any occurrence of the field matches (`!=`: when none is equal).

use crate::ctx::Ctx;
use crate::error::DissectError;
use crate::fields::{FType, Value, field_value};

/// A compiled display filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Field or protocol present.
    Has(String),
    /// Comparison.
    Cmp(String, Op, String),
    /// Negation.
    Not(Box<Filter>),
    /// Conjunction.
    And(Box<Filter>, Box<Filter>),
    /// Disjunction.
    Or(Box<Filter>, Box<Filter>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(Op),
    And,
    Or,
    Not,
    LParen,
    RParen,
}

fn lex(s: &str) -> Result<Vec<Tok>, DissectError> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let bad = |m: &str| DissectError::Usage(format!("-Y \"{s}\": {m}"));
    while i < b.len() {
        let ch = b[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = b[i..(i + 2).min(b.len())].iter().collect();
        let tok = match two.as_str() {
            "&&" => Some((Tok::And, 2)),
            "||" => Some((Tok::Or, 2)),
            "==" => Some((Tok::Op(Op::Eq), 2)),
            "!=" => Some((Tok::Op(Op::Ne), 2)),
            ">=" => Some((Tok::Op(Op::Ge), 2)),
            "<=" => Some((Tok::Op(Op::Le), 2)),
            _ => None,
        };
        if let Some((t, n)) = tok {
            out.push(t);
            i += n;
            continue;
        }
        match ch {
            '(' => out.push(Tok::LParen),
            ')' => out.push(Tok::RParen),
            '!' => out.push(Tok::Not),
            '>' => out.push(Tok::Op(Op::Gt)),
            '<' => out.push(Tok::Op(Op::Lt)),
            '"' => {
                let mut j = i + 1;
                let mut v = String::new();
                while j < b.len() && b[j] != '"' {
                    if b[j] == '\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    v.push(b[j]);
                    j += 1;
                }
                if j >= b.len() {
                    return Err(bad("unterminated string"));
                }
                out.push(Tok::Str(v));
                i = j + 1;
                continue;
            }
            _ => {
                let mut j = i;
                while j < b.len() && !b[j].is_whitespace() && !"()!=<>&|\"".contains(b[j]) {
                    j += 1;
                }
                if j == i {
                    return Err(bad(&format!("unexpected '{ch}'")));
                }
                let w: String = b[i..j].iter().collect();
                out.push(match w.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "eq" => Tok::Op(Op::Eq),
                    "ne" => Tok::Op(Op::Ne),
                    "gt" => Tok::Op(Op::Gt),
                    "lt" => Tok::Op(Op::Lt),
                    "ge" => Tok::Op(Op::Ge),
                    "le" => Tok::Op(Op::Le),
                    "contains" => Tok::Op(Op::Contains),
                    _ => Tok::Word(w),
                });
                i = j;
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> DissectError {
        DissectError::Usage(format!("-Y \"{}\": {m}", self.src))
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn or(&mut self) -> Result<Filter, DissectError> {
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, DissectError> {
        let mut l = self.not()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            l = Filter::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Filter, DissectError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Filter, DissectError> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let f = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("missing ')'"));
                }
                self.pos += 1;
                Ok(f)
            }
            Some(Tok::Word(field)) => {
                self.pos += 1;
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    let v = match self.toks.get(self.pos).cloned() {
                        Some(Tok::Word(w)) | Some(Tok::Str(w)) => w,
                        _ => return Err(self.err("missing value after operator")),
                    };
                    self.pos += 1;
                    Ok(Filter::Cmp(field, op, v))
                } else {
                    Ok(Filter::Has(field))
                }
            }
            _ => Err(self.err("expected a field name")),
        }
    }
}

impl Filter {
    /// Parses a filter and checks that its fields exist.
    pub fn parse(src: &str, c: &Ctx) -> Result<Filter, DissectError> {
        let toks = lex(src)?;
        let mut p = Parser { toks, pos: 0, src };
        let f = p.or()?;
        if p.pos != p.toks.len() {
            return Err(p.err("unexpected text after the expression"));
        }
        f.check(c, src)?;
        Ok(f)
    }

    fn check(&self, c: &Ctx, src: &str) -> Result<(), DissectError> {
        match self {
            Filter::Has(f) | Filter::Cmp(f, _, _) => {
                if c.reg.lookup(f).is_empty() {
                    return Err(DissectError::Usage(format!(
                        "-Y \"{src}\": \"{f}\" is neither a field nor a protocol name"
                    )));
                }
                Ok(())
            }
            Filter::Not(a) => a.check(c, src),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check(c, src)?;
                b.check(c, src)
            }
        }
    }

    /// Evaluates the filter on the current packet's tree.
    pub fn matches(&self, c: &Ctx) -> bool {
        match self {
            Filter::Has(f) => {
                let ids = c.reg.lookup(f);
                crate::output::has_field(&c.tree, ids)
            }
            Filter::Cmp(f, op, v) => {
                let ids = c.reg.lookup(f);
                let mut any_eq = false;
                for n in c.tree.nodes.iter().skip(1) {
                    if !ids.contains(&n.field) {
                        continue;
                    }
                    let def = c.reg.get(n.field);
                    let ord = compare(def.ftype, &n.value, &field_value(def, &n.value), v);
                    let hit = match op {
                        Op::Eq | Op::Ne => ord == Some(std::cmp::Ordering::Equal),
                        Op::Gt => ord == Some(std::cmp::Ordering::Greater),
                        Op::Lt => ord == Some(std::cmp::Ordering::Less),
                        Op::Ge => matches!(
                            ord,
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        ),
                        Op::Le => matches!(
                            ord,
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        ),
                        Op::Contains => field_value(def, &n.value).contains(v.as_str()),
                    };
                    if hit {
                        if *op == Op::Ne {
                            any_eq = true;
                            continue;
                        }
                        return true;
                    }
                    if *op == Op::Ne {
                        continue;
                    }
                }
                if *op == Op::Ne {
                    // True when the field is present and no occurrence is equal.
                    return !any_eq && crate::output::has_field(&c.tree, ids);
                }
                false
            }
            Filter::Not(a) => !a.matches(c),
            Filter::And(a, b) => a.matches(c) && b.matches(c),
            Filter::Or(a, b) => a.matches(c) || b.matches(c),
        }
    }
}

fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()
    } else {
        s.parse::<i128>().ok()
    }
}

fn compare(t: FType, v: &Value, shown: &str, lit: &str) -> Option<std::cmp::Ordering> {
    match v {
        Value::U(u) => parse_int(lit).map(|l| (*u as i128).cmp(&l)),
        Value::I(i) => parse_int(lit).map(|l| (*i as i128).cmp(&l)),
        Value::Bool(b) => {
            let l = match lit.to_ascii_lowercase().as_str() {
                "1" | "true" => 1,
                "0" | "false" => 0,
                _ => return None,
            };
            Some(((*b != 0) as i32).cmp(&l))
        }
        Value::F(f) => lit.parse::<f64>().ok().and_then(|l| f.partial_cmp(&l)),
        Value::Bytes(_) | Value::Ether(_) => {
            let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], ":");
            Some(norm(shown).cmp(&norm(lit)))
        }
        _ => {
            let _ = t;
            Some(shown.cmp(lit))
        }
    }
}
