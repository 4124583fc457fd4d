//! The typed join description: what the job file's `[[operator]] kind = "join"` becomes once the
//! config is parsed. The kernels take these values; they never see the job file's text.

use std::fmt;
use std::time::Duration;

/// The join types a job can name (`type = "left_outer"`), as Spark's `JoinType`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinType {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
    LeftAnti,
}

impl JoinType {
    /// Every join type, in the order the job file documents them.
    pub const ALL: [JoinType; 6] = [
        JoinType::Inner,
        JoinType::LeftOuter,
        JoinType::RightOuter,
        JoinType::FullOuter,
        JoinType::LeftSemi,
        JoinType::LeftAnti,
    ];

    /// The job file's name of a join type: exactly `inner`, `left_outer`, `right_outer`,
    /// `full_outer`, `left_semi` or `left_anti`; anything else is refused with the list.
    pub fn parse(text: &str) -> Result<JoinType, String> {
        JoinType::ALL.into_iter().find(|t| t.as_str() == text).ok_or_else(|| {
            format!(
                "join type {text:?} is not one of {}; write e.g. type = \"left_outer\"",
                JoinType::ALL.map(|t| format!("\"{}\"", t.as_str())).join(", ")
            )
        })
    }

    /// The job file's name (what [`JoinType::parse`] accepts).
    pub fn as_str(self) -> &'static str {
        match self {
            JoinType::Inner => "inner",
            JoinType::LeftOuter => "left_outer",
            JoinType::RightOuter => "right_outer",
            JoinType::FullOuter => "full_outer",
            JoinType::LeftSemi => "left_semi",
            JoinType::LeftAnti => "left_anti",
        }
    }

    /// Spark's name of the type (its `JoinType.toString`), as Spark's messages print it.
    pub fn spark_name(self) -> &'static str {
        match self {
            JoinType::Inner => "Inner",
            JoinType::LeftOuter => "LeftOuter",
            JoinType::RightOuter => "RightOuter",
            JoinType::FullOuter => "FullOuter",
            JoinType::LeftSemi => "LeftSemi",
            JoinType::LeftAnti => "LeftAnti",
        }
    }

    /// Semi and anti joins output the left side's columns only (Spark's `LeftExistence`).
    pub fn left_only(self) -> bool {
        matches!(self, JoinType::LeftSemi | JoinType::LeftAnti)
    }

    /// Whether the left side's columns can be missing in an output row (null-filled).
    pub fn left_nullable(self) -> bool {
        matches!(self, JoinType::RightOuter | JoinType::FullOuter)
    }

    /// Whether the right side's columns can be missing in an output row (null-filled).
    pub fn right_nullable(self) -> bool {
        matches!(self, JoinType::LeftOuter | JoinType::FullOuter)
    }
}

impl fmt::Display for JoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One equality of a pair join: `left = right`, columns named on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub left: String,
    pub right: String,
}

/// The equi-join keys (`on` in the job file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinKeys {
    /// `on = ["user_id", ...]`: the same name on both sides (SQL `USING`); each key appears once in
    /// the output.
    Using(Vec<String>),
    /// `on = [{ left = "uid", right = "id" }, ...]`: both columns of every pair stay in the output.
    Pairs(Vec<KeyPair>),
}

impl JoinKeys {
    /// The key column names on one side, in key order.
    pub fn names(&self, side: Side) -> Vec<&str> {
        match self {
            JoinKeys::Using(names) => names.iter().map(String::as_str).collect(),
            JoinKeys::Pairs(pairs) => pairs
                .iter()
                .map(|p| match side {
                    Side::Left => p.left.as_str(),
                    Side::Right => p.right.as_str(),
                })
                .collect(),
        }
    }

    /// Number of key columns per side.
    pub fn len(&self) -> usize {
        match self {
            JoinKeys::Using(names) => names.len(),
            JoinKeys::Pairs(pairs) => pairs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole join as the job describes it; the inputs (which source is on which side) are the
/// plan's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub join_type: JoinType,
    pub keys: JoinKeys,
    /// Prepended to every left-side output column except merged `USING` keys.
    pub left_prefix: Option<String>,
    /// Prepended to every right-side output column except merged `USING` keys.
    pub right_prefix: Option<String>,
}

/// A side of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    /// `"left"` or `"right"`, for messages and the job file's `left =` / `right =`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a static table is re-read (`refresh` in the job file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refresh {
    /// Read once when the query starts (Spark's behaviour for a static DataFrame of files).
    Never,
    /// Rescanned at every batch; re-read when a file was added, removed or changed.
    #[default]
    OnChange,
    /// Rescanned at the first batch at least this long after the previous scan.
    Every(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_the_documented_names_and_round_trips() {
        let names = ["inner", "left_outer", "right_outer", "full_outer", "left_semi", "left_anti"];
        for (name, t) in names.iter().zip(JoinType::ALL) {
            assert_eq!(JoinType::parse(name), Ok(t));
            assert_eq!(t.as_str(), *name);
        }
        for bad in ["Inner", "left", "leftouter", "left outer", "outer", "cross", " inner", "semi"] {
            assert!(JoinType::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn parse_error_lists_the_accepted_names() {
        assert_eq!(
            JoinType::parse("left").unwrap_err(),
            "join type \"left\" is not one of \"inner\", \"left_outer\", \"right_outer\", \"full_outer\", \
             \"left_semi\", \"left_anti\"; write e.g. type = \"left_outer\""
        );
    }

    #[test]
    fn nullable_sides_per_type() {
        let got: Vec<(bool, bool, bool)> =
            JoinType::ALL.iter().map(|t| (t.left_nullable(), t.right_nullable(), t.left_only())).collect();
        assert_eq!(
            got,
            vec![
                (false, false, false),
                (false, true, false),
                (true, false, false),
                (true, true, false),
                (false, false, true),
                (false, false, true),
            ]
        );
    }

    #[test]
    fn key_names_per_side() {
        let pairs = JoinKeys::Pairs(vec![
            KeyPair { left: "uid".into(), right: "id".into() },
            KeyPair { left: "d".into(), right: "day".into() },
        ]);
        assert_eq!(pairs.names(Side::Left), vec!["uid", "d"]);
        assert_eq!(pairs.names(Side::Right), vec!["id", "day"]);
        let using = JoinKeys::Using(vec!["k".into()]);
        assert_eq!(using.names(Side::Right), vec!["k"]);
        assert_eq!(using.len(), 1);
    }
}
