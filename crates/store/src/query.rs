//! Arkime's search expression language: parser and syntax tree.
//!
//! ```text
//! expr    := or
//! or      := and ('||' and)*
//! and     := unary ('&&' unary)*
//! unary   := '!' unary | '(' expr ')' | compare
//! compare := FIELD OP value          OP: == != < <= > >=
//! value   := EXISTS! | "quoted" | /regex/ | [item, item, ...] | bare
//! ```
//!
//! Field names are the registry's expression names (database paths such as
//! `source.ip` are accepted too, as Arkime's viewer does). A bare value holding
//! `*` or `?` is a wildcard; a quoted value is taken literally (Arkime's
//! way to search for a `*`). Regexes match the whole value, as Arkime's
//! Elasticsearch `regexp` queries do (`/.*login.*/` finds `login` anywhere).
//! Every error carries the byte position it refers to.

use fields::{FieldId, FieldRegistry};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// One scalar value of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    /// A bare or quoted string; `quoted` turns wildcards off.
    Text {
        /// The text (quotes and escapes removed).
        text: String,
        /// True when it was written in double quotes.
        quoted: bool,
    },
    /// `/regex/` (the slashes removed).
    Regex(String),
}

impl Scalar {
    /// True for an unquoted value with `*` or `?`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Scalar::Text { text, quoted: false } if text.contains(['*', '?']))
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `EXISTS!`
    Exists,
    /// One value.
    One(Scalar),
    /// `[a, b, ...]`: any of them (with `==`), none of them (with `!=`).
    List(Vec<(Scalar, usize)>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Not.
    Not(Box<Expr>),
    /// `field op value`.
    Compare {
        /// The field (possibly a multi-field expression).
        field: FieldId,
        /// Byte position of the field name.
        field_pos: usize,
        /// The operator.
        op: Op,
        /// The value.
        value: Value,
        /// Byte position of the value.
        value_pos: usize,
    },
}

/// What went wrong in an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryErrorKind {
    /// The field name is not in the registry.
    #[error("unknown field {0:?}")]
    UnknownField(String),
    /// An operator that is not one of `== != < <= > >=`.
    #[error("unknown operator {0:?} (expected ==, !=, <, <=, >, >=)")]
    UnknownOperator(String),
    /// Something else was expected here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the parser wanted.
        expected: &'static str,
        /// What it found.
        found: String,
    },
    /// A string or regex without its closing quote/slash, or a list
    /// without `]`.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// A value that does not fit the field's kind.
    #[error("{field}: {reason}")]
    BadValue {
        /// The field's expression name.
        field: String,
        /// Why.
        reason: String,
    },
}

/// An expression error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at position {pos}")]
pub struct QueryError {
    /// What went wrong.
    pub kind: QueryErrorKind,
    /// Byte offset in the expression.
    pub pos: usize,
}

impl QueryError {
    /// The error with the expression and a caret under the position, for
    /// showing to a user.
    pub fn render(&self, expr: &str) -> String {
        let col = expr[..self.pos.min(expr.len())].chars().count();
        format!("{self}\n  {expr}\n  {}^", " ".repeat(col))
    }
}

fn err(kind: QueryErrorKind, pos: usize) -> QueryError {
    QueryError { kind, pos }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    reg: &'a FieldRegistry,
}

/// Parses an expression against a registry.
pub fn parse(src: &str, reg: &FieldRegistry) -> Result<Expr, QueryError> {
    let mut p = Parser { src, pos: 0, reg };
    let e = p.or()?;
    p.ws();
    if p.pos < src.len() {
        return Err(err(
            QueryErrorKind::Expected {
                expected: "&&, || or the end of the expression",
                found: p.found(),
            },
            p.pos,
        ));
    }
    Ok(e)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn found(&self) -> String {
        let r = self.rest();
        if r.is_empty() {
            "the end of the expression".into()
        } else {
            let tok: String = r
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("{tok:?}")
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err(err(
                    QueryErrorKind::Expected {
                        expected: "')'",
                        found: self.found(),
                    },
                    self.pos,
                ));
            }
            return Ok(e);
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, QueryError> {
        self.ws();
        let field_pos = self.pos;
        let name_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-:@".contains(c)))
            .unwrap_or(self.rest().len());
        if name_len == 0 {
            return Err(err(
                QueryErrorKind::Expected {
                    expected: "a field name",
                    found: self.found(),
                },
                field_pos,
            ));
        }
        let name = &self.src[field_pos..field_pos + name_len];
        // Arkime's viewer also accepts database field names (`source.ip`).
        let field = self
            .reg
            .lookup_expr(name)
            .or_else(|| self.reg.by_db(name))
            .ok_or_else(|| err(QueryErrorKind::UnknownField(name.to_string()), field_pos))?;
        self.pos += name_len;
        self.ws();
        let op_pos = self.pos;
        let op_len = self
            .rest()
            .find(|c: char| !"=!<>~".contains(c))
            .unwrap_or(self.rest().len());
        let op = match &self.src[op_pos..op_pos + op_len] {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "" => {
                return Err(err(
                    QueryErrorKind::Expected {
                        expected: "an operator (==, !=, <, <=, >, >=)",
                        found: self.found(),
                    },
                    op_pos,
                ));
            }
            other => {
                return Err(err(
                    QueryErrorKind::UnknownOperator(other.to_string()),
                    op_pos,
                ));
            }
        };
        self.pos += op_len;
        self.ws();
        let value_pos = self.pos;
        let value = self.value()?;
        Ok(Expr::Compare {
            field,
            field_pos,
            op,
            value,
            value_pos,
        })
    }

    fn value(&mut self) -> Result<Value, QueryError> {
        let r = self.rest();
        if r.starts_with("EXISTS!") {
            self.pos += "EXISTS!".len();
            return Ok(Value::Exists);
        }
        if r.starts_with('[') {
            let open = self.pos;
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                self.ws();
                if self.rest().is_empty() {
                    return Err(err(QueryErrorKind::Unterminated("list"), open));
                }
                if self.rest().starts_with(']') {
                    self.pos += 1;
                    break;
                }
                let item_pos = self.pos;
                let item = self.scalar(true)?;
                items.push((item, item_pos));
                self.ws();
                if self.rest().starts_with(',') {
                    self.pos += 1;
                } else if self.rest().is_empty() {
                    return Err(err(QueryErrorKind::Unterminated("list"), open));
                } else if !self.rest().starts_with(']') {
                    return Err(err(
                        QueryErrorKind::Expected {
                            expected: "',' or ']'",
                            found: self.found(),
                        },
                        self.pos,
                    ));
                }
            }
            if items.is_empty() {
                return Err(err(
                    QueryErrorKind::Expected {
                        expected: "a value in the list",
                        found: "']'".into(),
                    },
                    open,
                ));
            }
            return Ok(Value::List(items));
        }
        Ok(Value::One(self.scalar(false)?))
    }

    fn scalar(&mut self, in_list: bool) -> Result<Scalar, QueryError> {
        let start = self.pos;
        let src = self.src;
        let r = &src[start..];
        if let Some(body) = r.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        self.pos += 1 + i + 1;
                        return Ok(Scalar::Text {
                            text: out,
                            quoted: true,
                        });
                    }
                    c => out.push(c),
                }
            }
            return Err(err(QueryErrorKind::Unterminated("quoted string"), start));
        }
        if let Some(body) = r.strip_prefix('/') {
            // A regex runs to the next unescaped '/'; without one the value
            // is a plain path-like string (`http.uri == /index.html`).
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '/' if !escaped => {
                        let re = body[..i].to_string();
                        self.pos += 1 + i + 1;
                        return Ok(Scalar::Regex(re));
                    }
                    _ => escaped = false,
                }
            }
        }
        let stop = |c: char| {
            c.is_whitespace() || c == ')' || c == '(' || (in_list && (c == ',' || c == ']'))
        };
        let mut len = r.find(stop).unwrap_or(r.len());
        for op in ["&&", "||"] {
            if let Some(i) = r[..len].find(op) {
                len = len.min(i);
            }
        }
        if len == 0 {
            return Err(err(
                QueryErrorKind::Expected {
                    expected: "a value",
                    found: self.found(),
                },
                start,
            ));
        }
        self.pos += len;
        Ok(Scalar::Text {
            text: r[..len].to_string(),
            quoted: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> FieldRegistry {
        FieldRegistry::builtin()
    }

    #[test]
    fn parses_precedence_and_values() {
        let r = reg();
        let e = parse("ip.src == 10.0.0.1 && port.dst == 443 || !tags == x", &r).unwrap();
        let Expr::Or(l, rr) = e else { panic!() };
        assert!(matches!(*l, Expr::And(..)));
        assert!(matches!(*rr, Expr::Not(..)));
        let e = parse("http.uri == /lo gin/", &r).unwrap();
        assert!(
            matches!(e, Expr::Compare { value: Value::One(Scalar::Regex(ref s)), .. } if s == "lo gin")
        );
        let e = parse(r#"protocols == [http, "tls", *ssh*]"#, &r).unwrap();
        let Expr::Compare {
            value: Value::List(items),
            ..
        } = e
        else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(items[2].0.is_wildcard());
        let e = parse("dns.host != EXISTS!", &r).unwrap();
        assert!(matches!(
            e,
            Expr::Compare {
                op: Op::Ne,
                value: Value::Exists,
                ..
            }
        ));
        let e = parse("(port.dst>=80&&port.dst<=90)", &r).unwrap();
        assert!(matches!(e, Expr::And(..)));
        let e = parse("http.uri == /index.html", &r).unwrap();
        assert!(matches!(
            e,
            Expr::Compare {
                value: Value::One(Scalar::Text { .. }),
                ..
            }
        ));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let r = reg();
        let e = parse("ip.src == 1.2.3.4 && nosuch.field == 3", &r).unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::UnknownField("nosuch.field".into()));
        assert_eq!(e.pos, 21);
        let e = parse("port.dst =~ 3", &r).unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::UnknownOperator("=~".into()));
        assert_eq!(e.pos, 9);
        let e = parse("(port.dst == 3", &r).unwrap_err();
        assert!(matches!(
            e.kind,
            QueryErrorKind::Expected {
                expected: "')'",
                ..
            }
        ));
        let e = parse("tags == \"abc", &r).unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::Unterminated("quoted string"));
        let e = parse("tags == [a, b", &r).unwrap_err();
        assert_eq!(e.kind, QueryErrorKind::Unterminated("list"));
        let e = parse("tags == a b", &r).unwrap_err();
        assert_eq!(e.pos, 10);
        assert!(e.render("tags == a b").ends_with("          ^"));
    }
}
