//! Reading the tables whose shape a tag decides — `[[operator]]` by `kind`, `[source]`,
//! `[sink]` and `[[sink.output]]` by `format` — into one struct (or a few shared ones) per
//! variant, each refusing the fields it does not have.
//!
//! serde's own tagged enums buffer a table before they pick the variant, and so lose where a
//! field is written. Here the tag is read first from the parsed document, and the variant's
//! structs are read from the same spanned values, so a misspelled field is still shown at its
//! line and column; a field that belongs to another variant is named with its table instead
//! (`operator[2].on`: does not apply to kind = "map"; remove it).

use std::ops::Range;
use std::path::Path;

use serde::de::{DeserializeOwned, Error as _, Visitor};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::kinds::quoted;
use super::JobError;

/// One value of the parsed job file, with where it is written.
pub(super) type Item<'i> = Spanned<DeValue<'i>>;

/// The job file being read: its text, for positions in messages, and its name.
pub(super) struct Reader<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Reader<'_> {
    /// `T` from one value of the document; a mistake in it is shown at its line and column.
    pub fn read<T: DeserializeOwned>(&self, item: Item<'_>) -> Result<T, JobError> {
        T::deserialize(ValueDeserializer::from(item)).map_err(|e| self.syntax(e))
    }

    /// A TOML error, rendered with the lines it points at.
    pub fn syntax(&self, mut e: toml::de::Error) -> JobError {
        e.set_input(Some(self.text));
        JobError::Syntax { file: self.file.to_path_buf(), message: e.to_string().trim_end().to_string() }
    }

    /// An error shown at `span` of the text, the way the TOML parser shows its own.
    pub fn error_at(&self, span: Range<usize>, message: String) -> JobError {
        struct Refuse(String);
        impl<'de> Visitor<'de> for Refuse {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(&self.0)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
                Err(E::custom(self.0))
            }
        }
        // The deserializer puts its value's span on an error that has none.
        let at = ValueDeserializer::from(Spanned::new(span, DeValue::Boolean(true)));
        match serde::Deserializer::deserialize_any(at, Refuse(message)) {
            Err(e) => self.syntax(e),
            Ok(()) => unreachable!("Refuse accepts nothing"),
        }
    }

    /// An error about one field, named by its path (`operator[2].on`).
    pub fn field(&self, field: String, message: String) -> JobError {
        JobError::Field { file: self.file.to_path_buf(), field, message }
    }
}

/// The names a derived struct takes, aliases included: what serde hands to
/// `deserialize_struct`, asked once without data.
pub(super) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Ask<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Ask<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Self::Error::custom("only the fields were asked for"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Ask(&mut fields));
    fields
}

/// A variant's fields: in one struct, or split over a few that variants share (a plugin's
/// limits, a sink's checkpoint and trigger). Each field goes to the first struct that has it.
pub(super) trait Parts: Sized {
    fn fields() -> Vec<&'static str>;
    fn read(r: &Reader, span: Range<usize>, table: DeTable<'_>) -> Result<Self, JobError>;
}

/// Takes out of `table` the fields `T` has, as a table of their own at the same place.
fn part<T: DeserializeOwned>(
    r: &Reader,
    span: &Range<usize>,
    table: &mut DeTable<'_>,
    last: bool,
) -> Result<T, JobError> {
    let fields = fields_of::<T>();
    let mut mine = DeTable::new();
    for (k, v) in std::mem::take(table) {
        // The last part also takes what no part has, so that serde names it.
        if last || fields.contains(&k.get_ref().as_ref()) {
            mine.insert(k, v);
        } else {
            table.insert(k, v);
        }
    }
    r.read(Spanned::new(span.clone(), DeValue::Table(mine)))
}

macro_rules! parts {
    ($($p:ident),+; $last:ident) => {
        impl<$($p: DeserializeOwned,)+ $last: DeserializeOwned> Parts for ($($p,)+ $last) {
            fn fields() -> Vec<&'static str> {
                let mut all = Vec::new();
                $(all.extend_from_slice(fields_of::<$p>());)+
                all.extend_from_slice(fields_of::<$last>());
                all
            }

            fn read(r: &Reader, span: Range<usize>, mut table: DeTable<'_>) -> Result<Self, JobError> {
                Ok(($(part::<$p>(r, &span, &mut table, false)?,)+ part::<$last>(r, &span, &mut table, true)?))
            }
        }
    };
}
impl<A: DeserializeOwned> Parts for (A,) {
    fn fields() -> Vec<&'static str> {
        fields_of::<A>().to_vec()
    }

    fn read(r: &Reader, span: Range<usize>, mut table: DeTable<'_>) -> Result<Self, JobError> {
        Ok((part::<A>(r, &span, &mut table, true)?,))
    }
}
parts!(A; B);
parts!(A, B; C);

/// One variant of a tagged table: the fields it takes, and how it is read.
pub(super) struct Variant<T> {
    fields: Vec<&'static str>,
    #[allow(clippy::type_complexity)]
    read: Box<dyn Fn(&Reader, &str, Range<usize>, DeTable<'_>) -> Result<T, JobError>>,
}

impl<T: 'static> Variant<T> {
    /// A variant made of the structs `P` (one, or a tuple that `Parts` splits the table over).
    pub fn of<P: Parts + 'static>(make: impl Fn(P) -> T + 'static) -> Variant<T> {
        Variant { fields: P::fields(), read: Box::new(move |r, _, span, table| P::read(r, span, table).map(&make)) }
    }

    /// A variant with one more field, `extra`, that `read` takes out of the table by hand
    /// before the rest is read (`[[sink.output]]`, itself a tagged table).
    pub fn with(
        mut self,
        extra: &'static str,
        read: impl Fn(&Reader, &str, Option<Item<'_>>, T) -> Result<T, JobError> + 'static,
    ) -> Variant<T> {
        self.fields.push(extra);
        let inner = self.read;
        self.read = Box::new(move |r, at, span, mut table| {
            let item = table.remove(extra);
            let value = inner(r, at, span, table)?;
            read(r, at, item, value)
        });
        self
    }
}

/// A table whose tag picks its variant.
pub(super) trait Tagged: Sized + 'static {
    /// The tag's key: `kind` or `format`.
    const TAG: &'static str;
    /// Every value of the tag (`kinds` checks them first, with its own messages).
    const TAGS: &'static [&'static str];

    /// The variant of tag value `tag`, one of `TAGS`.
    fn variant(tag: &str) -> Variant<Self>;

    /// Why `field`, which another variant takes, is refused in `table` of variant `tag`.
    fn foreign(_field: &str, tag: &str, _table: &DeTable<'_>) -> String {
        format!("does not apply to {} = \"{tag}\"; remove it", Self::TAG)
    }

    /// Reads the table `item`, at `at` in the job file (`operator[2]`, `sink`).
    fn read(r: &Reader, at: &str, item: Item<'_>) -> Result<Self, JobError> {
        let span = item.span();
        let mut table = match item.into_inner() {
            DeValue::Table(t) => t,
            other => {
                // serde's own words for a value that is not a table, where it has some.
                let _: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
                    r.read(Spanned::new(span.clone(), other))?;
                return Err(r.error_at(span, format!("expected a table for `{at}`")));
            }
        };
        let tag: String = match table.get(Self::TAG) {
            Some(v) => r.read(v.clone())?,
            None => {
                return Err(
                    r.field(format!("{at}.{}", Self::TAG), format!("is required: one of {}", quoted(Self::TAGS)))
                )
            }
        };
        if !Self::TAGS.contains(&tag.as_str()) {
            return Err(r.field(
                format!("{at}.{}", Self::TAG),
                format!("unknown {} {tag:?}; allowed: {}", Self::TAG, quoted(Self::TAGS)),
            ));
        }
        let variant = Self::variant(&tag);
        for key in table.keys() {
            let k: &str = key.get_ref().as_ref();
            if k == Self::TAG || variant.fields.contains(&k) {
                continue;
            }
            if Self::TAGS.iter().any(|t| Self::variant(t).fields.contains(&k)) {
                return Err(r.field(format!("{at}.{k}"), Self::foreign(k, &tag, &table)));
            }
            let expected: Vec<String> =
                std::iter::once(Self::TAG).chain(variant.fields.iter().copied()).map(|f| format!("`{f}`")).collect();
            return Err(r.error_at(key.span(), format!("unknown field `{k}`, expected one of {}", expected.join(", "))));
        }
        table.remove(Self::TAG);
        (variant.read)(r, at, span, table)
    }
}

/// `[[name]]` tables as written: each read as `T`, at `name[i]`.
pub(super) fn read_list<T: Tagged>(r: &Reader, name: &str, item: Item<'_>) -> Result<Vec<T>, JobError> {
    let span = item.span();
    match item.into_inner() {
        DeValue::Array(list) => {
            list.iter().enumerate().map(|(i, t)| T::read(r, &format!("{name}[{i}]"), t.clone())).collect()
        }
        other => {
            // serde's own words for a value that is not a list, where it has some.
            let _: Vec<serde::de::IgnoredAny> = r.read(Spanned::new(span.clone(), other))?;
            Err(r.error_at(span, format!("expected [[{name}]] tables")))
        }
    }
}
