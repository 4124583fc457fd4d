//! The groups of one `process-groups` call, and the views a plugin reads a group through.
//!
//! The host sends every group of a call at once: one batch of keys (a row per group), one
//! batch of rows (group after group) and the offsets where each group's rows start. A
//! [`Group`] is an index into those batches: its column views are slices of the received
//! lists, so reading a group copies nothing, as the mapper path's views copy nothing.

use std::cell::OnceCell;
use std::fmt;
use std::ops::Range;

use crate::batch::{check_utf8, Batch, BinaryView, Column, PrimitiveView, StrView, Values};
use crate::output::BatchError;
use crate::schema::{names, DataType};
use crate::stateful::time::{BatchTime, Timer};

/// Everything one `process-groups` call receives: the keys with new rows, a timeout that fired
/// or timers that fired, their rows and their stored states.
///
/// The export macro builds this from what the host sent; build one by hand to unit-test a
/// plugin natively with [`process_groups`](crate::process_groups).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Groups {
    /// One row per group: the values of the key columns.
    pub keys: Batch,
    /// The input rows of all groups, group after group, each group's in arrival order.
    pub rows: Batch,
    /// Group `g` owns rows `row_offsets[g]..row_offsets[g + 1]`: one entry more than groups,
    /// starting at 0 and ending at the row count.
    pub row_offsets: Vec<u32>,
    /// The stored state of each group (postcard bytes), `None` when the key has none.
    pub states: Vec<Option<Vec<u8>>>,
    /// Whether each group is called because its timeout fired (it then has no rows).
    pub timed_out: Vec<bool>,
    /// Each group's timers that fired in this batch, earliest first.
    pub expired_timers: Vec<Vec<Timer>>,
}

impl Groups {
    /// Groups with new rows only: no stored state, no timeout fired, no timer expired. Set the
    /// public fields afterwards for the other cases.
    pub fn new(keys: Batch, rows: Batch, row_offsets: Vec<u32>) -> Groups {
        let n = keys.num_rows();
        Groups {
            keys,
            rows,
            row_offsets,
            states: vec![None; n],
            timed_out: vec![false; n],
            expired_timers: vec![Vec::new(); n],
        }
    }

    /// The number of groups.
    pub fn len(&self) -> usize {
        self.keys.num_rows()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks what the views rely on: one key row, one state, one flag and one timer list per
    /// group, and offsets that cover the rows in order.
    pub(crate) fn check(&self) -> Result<(), String> {
        let n = self.len();
        let per_group = [
            ("states", self.states.len()),
            ("timed-out", self.timed_out.len()),
            ("expired-timers", self.expired_timers.len()),
        ];
        if let Some((what, len)) = per_group.iter().find(|(_, len)| *len != n) {
            return Err(format!("{n} groups (key rows) but {len} entries in `{what}`"));
        }
        if self.row_offsets.len() != n + 1 {
            return Err(format!("{n} groups but {} row offsets (there must be one more)", self.row_offsets.len()));
        }
        let last = self.row_offsets[n] as usize;
        if self.row_offsets[0] != 0 || self.row_offsets.windows(2).any(|w| w[0] > w[1]) || last != self.rows.num_rows()
        {
            return Err(format!(
                "row offsets must start at 0, never decrease and end at the row count ({}); they end at {last}",
                self.rows.num_rows()
            ));
        }
        Ok(())
    }
}

/// The per-call context the views share: the groups, the clocks, and which string columns were
/// already checked to be UTF-8 (once per call, not once per group).
pub(crate) struct CallContext<'a> {
    pub(crate) groups: &'a Groups,
    pub(crate) time: &'a BatchTime,
    rows_utf8: Vec<OnceCell<Result<(), BatchError>>>,
    keys_utf8: Vec<OnceCell<Result<(), BatchError>>>,
}

impl<'a> CallContext<'a> {
    pub(crate) fn new(groups: &'a Groups, time: &'a BatchTime) -> Self {
        CallContext {
            groups,
            time,
            rows_utf8: groups.rows.columns().iter().map(|_| OnceCell::new()).collect(),
            keys_utf8: groups.keys.columns().iter().map(|_| OnceCell::new()).collect(),
        }
    }

    pub(crate) fn group(&'a self, index: usize) -> Group<'a> {
        let offsets = &self.groups.row_offsets;
        Group { cx: self, index, rows: offsets[index] as usize..offsets[index + 1] as usize }
    }

    fn rows(&'a self) -> Columns<'a> {
        Columns { batch: &self.groups.rows, utf8: &self.rows_utf8, what: "the rows" }
    }

    fn keys(&'a self) -> Columns<'a> {
        Columns { batch: &self.groups.keys, utf8: &self.keys_utf8, what: "the key" }
    }
}

/// One group (one key) of the call: its key values, its rows, its expired timers.
#[derive(Clone)]
pub struct Group<'a> {
    cx: &'a CallContext<'a>,
    index: usize,
    rows: Range<usize>,
}

impl<'a> Group<'a> {
    /// The group's position in this call (its row in the keys batch).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The key's values: one row of the key columns.
    pub fn key(&self) -> KeyRow<'a> {
        KeyRow { cx: self.cx, row: self.index }
    }

    /// The group's rows, in arrival order, as column views sliced from the call's rows batch.
    pub fn rows(&self) -> GroupRows<'a> {
        GroupRows { cx: self.cx, range: self.rows.clone() }
    }

    /// The number of rows the group has (0 when called for a timeout or timers only).
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }

    /// Where the group's rows are in the call's rows batch: row `i` of the group is row
    /// `row_range().start + i` there, the number a [`BatchError::at_row`] must carry.
    pub fn row_range(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// The clocks of this batch.
    pub fn batch_time(&self) -> &'a BatchTime {
        self.cx.time
    }

    /// The group's timers that fired in this batch, earliest first. The host has deleted them:
    /// register a timer again to keep it.
    pub fn expired_timers(&self) -> &'a [Timer] {
        &self.cx.groups.expired_timers[self.index]
    }
}

impl fmt::Debug for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("index", &self.index)
            .field("key", &self.key().to_string())
            .field("rows", &self.rows)
            .finish()
    }
}

/// A group's rows: typed column views over the group's slice of the call's rows batch. Row `i`
/// of a view is the group's `i`-th row.
#[derive(Clone)]
pub struct GroupRows<'a> {
    cx: &'a CallContext<'a>,
    range: Range<usize>,
}

impl<'a> GroupRows<'a> {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the group has no rows.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The row of the call's rows batch that the group's row `i` is: what the host needs to
    /// dead-letter a record.
    pub fn batch_row(&self, i: usize) -> u32 {
        (self.range.start + i) as u32
    }

    /// An error about the group's row `i`, naming it as the host counts rows (in the call's
    /// rows batch), so the host can send that record to the dead-letter output.
    pub fn error_at(&self, i: usize, message: impl Into<String>) -> BatchError {
        BatchError::at_row(self.batch_row(i), message)
    }

    /// The `double` column `name`.
    pub fn f64s(&self, name: &str) -> Result<PrimitiveView<'a, f64>, BatchError> {
        self.cx.rows().primitive(name, self.range.clone(), DataType::Float64, |v| match v {
            Values::Float64(v) => Some(v),
            _ => None,
        })
    }

    /// The `int` column `name`.
    pub fn i32s(&self, name: &str) -> Result<PrimitiveView<'a, i32>, BatchError> {
        self.cx.rows().primitive(name, self.range.clone(), DataType::Int32, |v| match v {
            Values::Int32(v) => Some(v),
            _ => None,
        })
    }

    /// The `bigint` column `name`.
    pub fn i64s(&self, name: &str) -> Result<PrimitiveView<'a, i64>, BatchError> {
        self.cx.rows().primitive(name, self.range.clone(), DataType::Int64, |v| match v {
            Values::Int64(v) => Some(v),
            _ => None,
        })
    }

    /// The `timestamp` column `name`, as microseconds since the Unix epoch.
    pub fn timestamps(&self, name: &str) -> Result<PrimitiveView<'a, i64>, BatchError> {
        self.cx.rows().primitive(name, self.range.clone(), DataType::Timestamp, |v| match v {
            Values::Timestamp(v) => Some(v),
            _ => None,
        })
    }

    /// The `boolean` column `name`.
    pub fn bools(&self, name: &str) -> Result<PrimitiveView<'a, bool>, BatchError> {
        self.cx.rows().primitive(name, self.range.clone(), DataType::Boolean, |v| match v {
            Values::Boolean(v) => Some(v),
            _ => None,
        })
    }

    /// The `string` column `name`. The column is checked to be UTF-8 once per call, at the first
    /// group that asks, so reading a value is a slice.
    pub fn strs(&self, name: &str) -> Result<StrView<'a>, BatchError> {
        self.cx.rows().strs(name, self.range.clone())
    }

    /// The `string` column `name` as raw UTF-8 bytes (no UTF-8 check).
    pub fn utf8_bytes(&self, name: &str) -> Result<BinaryView<'a>, BatchError> {
        self.cx.rows().var_len(name, self.range.clone(), DataType::Utf8)
    }

    /// The `binary` column `name`.
    pub fn binaries(&self, name: &str) -> Result<BinaryView<'a>, BatchError> {
        self.cx.rows().var_len(name, self.range.clone(), DataType::Binary)
    }
}

/// The key of a group: one row of the key columns, read by name.
#[derive(Clone, Copy)]
pub struct KeyRow<'a> {
    cx: &'a CallContext<'a>,
    row: usize,
}

impl<'a> KeyRow<'a> {
    fn one(&self) -> Range<usize> {
        self.row..self.row + 1
    }

    /// The `double` key column `name` (`None` when null).
    pub fn f64(&self, name: &str) -> Result<Option<f64>, BatchError> {
        let v = self.cx.keys().primitive(name, self.one(), DataType::Float64, |v| match v {
            Values::Float64(v) => Some(v),
            _ => None,
        })?;
        Ok(v.get(0))
    }

    /// The `int` key column `name`.
    pub fn i32(&self, name: &str) -> Result<Option<i32>, BatchError> {
        let v = self.cx.keys().primitive(name, self.one(), DataType::Int32, |v| match v {
            Values::Int32(v) => Some(v),
            _ => None,
        })?;
        Ok(v.get(0))
    }

    /// The `bigint` key column `name`.
    pub fn i64(&self, name: &str) -> Result<Option<i64>, BatchError> {
        let v = self.cx.keys().primitive(name, self.one(), DataType::Int64, |v| match v {
            Values::Int64(v) => Some(v),
            _ => None,
        })?;
        Ok(v.get(0))
    }

    /// The `timestamp` key column `name` (microseconds since the Unix epoch).
    pub fn timestamp(&self, name: &str) -> Result<Option<i64>, BatchError> {
        let v = self.cx.keys().primitive(name, self.one(), DataType::Timestamp, |v| match v {
            Values::Timestamp(v) => Some(v),
            _ => None,
        })?;
        Ok(v.get(0))
    }

    /// The `boolean` key column `name`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, BatchError> {
        let v = self.cx.keys().primitive(name, self.one(), DataType::Boolean, |v| match v {
            Values::Boolean(v) => Some(v),
            _ => None,
        })?;
        Ok(v.get(0))
    }

    /// The `string` key column `name`.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, BatchError> {
        Ok(self.cx.keys().strs(name, self.one())?.get(0))
    }

    /// The `binary` key column `name`.
    pub fn binary(&self, name: &str) -> Result<Option<&'a [u8]>, BatchError> {
        Ok(self.cx.keys().var_len(name, self.one(), DataType::Binary)?.get(0))
    }

    /// The key columns, for copying a key into an output row.
    pub(crate) fn columns(&self) -> &'a [Column] {
        self.cx.groups.keys.columns()
    }

    /// The key's row in the keys batch.
    pub(crate) fn row(&self) -> usize {
        self.row
    }
}

/// `user_id="alice", day=19000`: the key as error messages name it.
impl fmt::Display for KeyRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.columns().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=", c.name)?;
            let r = self.row;
            if c.data.validity.as_ref().is_some_and(|v| !v[r]) {
                f.write_str("null")?;
                continue;
            }
            match &c.data.values {
                Values::Boolean(v) => write!(f, "{}", v[r])?,
                Values::Int32(v) => write!(f, "{}", v[r])?,
                Values::Int64(v) | Values::Timestamp(v) => write!(f, "{}", v[r])?,
                Values::Float64(v) => write!(f, "{}", v[r])?,
                Values::Utf8(v) => {
                    let bytes = &v.data[v.offsets[r] as usize..v.offsets[r + 1] as usize];
                    write!(f, "{:?}", String::from_utf8_lossy(bytes))?
                }
                Values::Binary(v) => {
                    f.write_str("0x")?;
                    for b in &v.data[v.offsets[r] as usize..v.offsets[r + 1] as usize] {
                        write!(f, "{b:02x}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for KeyRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRow({self})")
    }
}

/// Column lookups shared by the rows and the key views.
struct Columns<'a> {
    batch: &'a Batch,
    utf8: &'a [OnceCell<Result<(), BatchError>>],
    what: &'static str,
}

impl<'a> Columns<'a> {
    fn column(&self, name: &str) -> Result<(usize, &'a Column), BatchError> {
        let columns = self.batch.columns();
        match columns.iter().position(|c| c.name == name) {
            Some(i) => Ok((i, &columns[i])),
            None => Err(BatchError::new(format!(
                "{} have no column `{name}`; the columns are: {}",
                self.what,
                names(columns.iter().map(|c| c.name.as_str()))
            ))),
        }
    }

    fn primitive<T: Copy>(
        &self,
        name: &str,
        range: Range<usize>,
        wanted: DataType,
        pick: impl FnOnce(&'a Values) -> Option<&'a Vec<T>>,
    ) -> Result<PrimitiveView<'a, T>, BatchError> {
        let (_, c) = self.column(name)?;
        match pick(&c.data.values) {
            Some(v) => Ok(PrimitiveView::new(&v[range.clone()], c.data.validity.as_deref().map(|b| &b[range]))),
            None => Err(wrong_type(name, wanted, c.data.data_type())),
        }
    }

    fn var_len(&self, name: &str, range: Range<usize>, wanted: DataType) -> Result<BinaryView<'a>, BatchError> {
        let (_, c) = self.column(name)?;
        match (&c.data.values, wanted) {
            (Values::Utf8(v), DataType::Utf8) | (Values::Binary(v), DataType::Binary) => {
                Ok(BinaryView::slice(v, c.data.validity.as_deref(), range))
            }
            _ => Err(wrong_type(name, wanted, c.data.data_type())),
        }
    }

    fn strs(&self, name: &str, range: Range<usize>) -> Result<StrView<'a>, BatchError> {
        let (i, c) = self.column(name)?;
        let Values::Utf8(v) = &c.data.values else {
            return Err(wrong_type(name, DataType::Utf8, c.data.data_type()));
        };
        self.utf8[i].get_or_init(|| check_utf8(name, v)).clone()?;
        Ok(StrView::from_checked(BinaryView::slice(v, c.data.validity.as_deref(), range)))
    }
}

fn wrong_type(name: &str, wanted: DataType, found: DataType) -> BatchError {
    BatchError::new(format!("column `{name}` is {found}, not {wanted}"))
}
