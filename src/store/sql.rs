//! One way to run SQL on either database. Store functions write each statement once, with
//! `?1`, `?2` placeholders (rewritten to `$1`, `$2` for PostgreSQL), bind plain values and read
//! columns as plain values; statements are prepared once per connection; errors arrive as
//! `StoreError`, with the database trouble that ends by itself told apart (`Unavailable`).
//! The few statements that differ between SQLite and PostgreSQL ask `Db::dialect`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{StoreError, StoreResult, Trouble};

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter or a column, as both databases hold it: flags are integers 0 and 1 on both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What may be bound to a placeholder.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                // Saturating is exact for what is bound here: counts, offsets and limits past
                // i64::MAX are past the end of any table.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_param!(i64, i32, u32, u64, usize);

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

/// The parameters of one statement: `args![a, b, c]`.
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$(&$x as &dyn $crate::store::sql::Param),*] as &[&dyn $crate::store::sql::Param]
    };
}
pub(crate) use args;

/// What a column may be read as.
pub trait Column: Sized {
    fn from_value(value: Value<'_>) -> Result<Self, String>;
}

impl Column for i64 {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! narrow_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_value(value: Value<'_>) -> Result<Self, String> {
                let wide = i64::from_value(value)?;
                <$t>::try_from(wide).map_err(|_| format!("{wide} is out of range"))
            }
        }
    )*};
}
narrow_column!(i32, u32, u64, usize);

impl Column for bool {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl Column for f64 {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl Column for String {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.to_owned()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl Column for Vec<u8> {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: Column> Column for Option<T> {
    fn from_value(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row of a result: its columns from `shift` on (see `shifted`).
pub struct Row<'r>(RowRef<'r>, usize);

#[derive(Clone, Copy)]
enum RowRef<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0).
    pub fn get<T: Column>(&self, i: usize) -> StoreResult<T> {
        let i = i + self.1;
        let converted = match &self.0 {
            RowRef::Sqlite(row) => {
                use rusqlite::types::ValueRef;
                let value = match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(
                        std::str::from_utf8(t).map_err(|e| StoreError::Database(e.to_string()))?,
                    ),
                    ValueRef::Blob(b) => Value::Blob(b),
                };
                T::from_value(value)
            }
            RowRef::Postgres(row) => pg::column(row, i).and_then(|v| T::from_value(v)),
        };
        converted.map_err(|e| StoreError::Database(format!("column {i}: {e}")))
    }

    /// The same row without its first `n` columns: a row reader written for a table's columns
    /// reads them after columns a statement put before them (a list's total).
    pub fn shifted(&self, n: usize) -> Row<'_> {
        Row(self.0, self.1 + n)
    }
}

/// A connection to PostgreSQL with its prepared statements, as the pool holds it.
pub struct PgConnection {
    /// Taken only when dropped (see `Drop`).
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

/// Statements kept prepared per connection at most (the store has fewer than this).
const PG_STATEMENTS: usize = 512;

impl PgConnection {
    pub(super) fn new(client: postgres::Client) -> Self {
        PgConnection {
            client: Some(client),
            statements: HashMap::new(),
        }
    }

    fn client(&mut self) -> StoreResult<&mut postgres::Client> {
        self.client.as_mut().ok_or_else(|| StoreError::Unavailable {
            trouble: Trouble::NoConnection,
            cause: "the connection is closed".into(),
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }

    /// Statements without parameters, run as they are.
    pub(super) fn batch(&mut self, sql: &str) -> StoreResult<()> {
        Ok(self.client()?.batch_execute(sql)?)
    }

    fn statement(&mut self, sql: &str) -> StoreResult<postgres::Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(&placeholders(sql))?;
        if self.statements.len() >= PG_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        let values = pg::values(params);
        Ok(self.client()?.execute(&statement, &pg::refs(&values))?)
    }

    fn query(&mut self, sql: &str, params: &[&dyn Param]) -> StoreResult<Vec<postgres::Row>> {
        let statement = self.statement(sql)?;
        let values = pg::values(params);
        Ok(self.client()?.query(&statement, &pg::refs(&values))?)
    }
}

impl Drop for PgConnection {
    /// The synchronous client runs a small runtime of its own, which must not be dropped on
    /// an async thread (the pool goes with the server, on one): it is then closed on a thread
    /// of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(client));
            }
        }
    }
}

/// The database inside one of the store's transactions, as code outside `store/` sees it: a
/// handle to pass to store functions, never a way to run SQL of its own. Read closures get a
/// read transaction's, write closures a write transaction's.
pub struct Db<'c> {
    conn: Conn<'c>,
}

enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    /// With whether a statement failed: PostgreSQL then refuses the rest of the transaction,
    /// and its COMMIT would roll back without an error, so the store must not report one.
    Postgres(RefCell<&'c mut PgConnection>, Cell<bool>),
}

impl<'c> Db<'c> {
    pub(super) fn sqlite(conn: &'c rusqlite::Connection) -> Self {
        Db {
            conn: Conn::Sqlite(conn),
        }
    }

    pub(super) fn postgres(conn: &'c mut PgConnection) -> Self {
        Db {
            conn: Conn::Postgres(RefCell::new(conn), Cell::new(false)),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(..) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (backup, integrity checks, pragmas).
    pub(super) fn sqlite_conn(&self) -> Option<&'c rusqlite::Connection> {
        match self.conn {
            Conn::Sqlite(conn) => Some(conn),
            Conn::Postgres(..) => None,
        }
    }

    /// A statement of this transaction failed (PostgreSQL: the transaction cannot commit).
    pub(super) fn failed(&self) -> bool {
        match &self.conn {
            Conn::Sqlite(_) => false,
            Conn::Postgres(_, failed) => failed.get(),
        }
    }

    /// Notes a PostgreSQL error of this transaction on its way out.
    fn pg<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if let (Err(_), Conn::Postgres(_, failed)) = (&result, &self.conn) {
            failed.set(true);
        }
        result
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<u64> {
        match &self.conn {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                bind_sqlite(&mut statement, params)?;
                Ok(statement.raw_execute()? as u64)
            }
            Conn::Postgres(conn, _) => {
                let result = conn.borrow_mut().execute(sql, params);
                self.pg(result)
            }
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        match &self.conn {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                bind_sqlite(&mut statement, params)?;
                let mut rows = statement.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row(RowRef::Sqlite(row), 0))?);
                }
                Ok(out)
            }
            Conn::Postgres(conn, _) => {
                let rows = conn.borrow_mut().query(sql, params);
                let rows = self.pg(rows)?;
                rows.iter()
                    .map(|row| f(&Row(RowRef::Postgres(row), 0)))
                    .collect()
            }
        }
    }

    /// The first row of a query through `f`, or `None`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        match &self.conn {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                bind_sqlite(&mut statement, params)?;
                let mut rows = statement.raw_query();
                match rows.next()? {
                    Some(row) => Ok(Some(f(&Row(RowRef::Sqlite(row), 0))?)),
                    None => Ok(None),
                }
            }
            Conn::Postgres(conn, _) => {
                // The first row, as SQLite's step gives it (a query_row over several rows is
                // not an error on either database).
                let rows = conn.borrow_mut().query(sql, params);
                let row = self.pg(rows)?.into_iter().next();
                match row {
                    Some(row) => Ok(Some(f(&Row(RowRef::Postgres(&row), 0))?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// The first row of a query through `f`; `NotFound` when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.query_opt(sql, params, f)?.ok_or(StoreError::NotFound)
    }

    /// Statements without parameters, separated by semicolons (migrations).
    pub fn execute_batch(&self, sql: &str) -> StoreResult<()> {
        match &self.conn {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(conn, _) => {
                let result = conn.borrow_mut().batch(sql);
                self.pg(result)
            }
        }
    }
}

fn bind_sqlite(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn Param],
) -> StoreResult<()> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    let expected = statement.parameter_count();
    if expected != params.len() {
        return Err(StoreError::Database(format!(
            "the statement takes {expected} parameters, {} given",
            params.len()
        )));
    }
    for (i, param) in params.iter().enumerate() {
        let value = match param.value() {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        statement.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(value))?;
    }
    Ok(())
}

/// `?N` placeholders as PostgreSQL's `$N`, outside quoted text.
pub(super) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let trouble = match &error {
            rusqlite::Error::QueryReturnedNoRows => return StoreError::NotFound,
            rusqlite::Error::SqliteFailure(e, _)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return StoreError::Unique(error.to_string())
            }
            rusqlite::Error::SqliteFailure(e, _) => sqlite_trouble(e.code),
            _ => None,
        };
        match trouble {
            Some(trouble) => StoreError::Unavailable {
                trouble,
                cause: error.to_string(),
            },
            None => StoreError::Database(error.to_string()),
        }
    }
}

/// The trouble an SQLite result code stands for, if it is one that ends by itself.
fn sqlite_trouble(code: rusqlite::ErrorCode) -> Option<Trouble> {
    use rusqlite::ErrorCode as C;
    Some(match code {
        C::DatabaseBusy | C::DatabaseLocked => Trouble::Locked,
        C::ReadOnly => Trouble::ReadOnly,
        C::DiskFull => Trouble::Full,
        C::SystemIoFailure => Trouble::Io,
        C::CannotOpen => Trouble::NoConnection,
        _ => return None,
    })
}

/// A PostgreSQL error with what the server said (its Display alone is "db error").
fn pg_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => error.to_string(),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let Some(code) = error.code() else {
            // No answer from the server: the connection is gone or could not be made.
            return StoreError::Unavailable {
                trouble: Trouble::NoConnection,
                cause: error.to_string(),
            };
        };
        let message = pg_message(&error);
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Unique(message);
        }
        let trouble = match code.code() {
            c if c.starts_with("08") => Trouble::NoConnection,
            "57P01" | "57P02" | "57P03" => Trouble::NoConnection,
            "53100" => Trouble::Full,
            c if c.starts_with("53") => Trouble::Full,
            "25006" => Trouble::ReadOnly,
            "40001" | "40P01" | "55P03" | "57014" => Trouble::Locked,
            "58030" => Trouble::Io,
            _ => return StoreError::Database(message),
        };
        StoreError::Unavailable {
            trouble,
            cause: message,
        }
    }
}

mod pg {
    use bytes::BytesMut;
    use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

    use super::{Param, Value};

    /// A value bound as whatever type PostgreSQL inferred for its placeholder.
    #[derive(Debug)]
    pub struct Bound<'a>(Value<'a>);

    pub fn values<'a>(params: &'a [&'a dyn Param]) -> Vec<Bound<'a>> {
        params.iter().map(|p| Bound(p.value())).collect()
    }

    pub fn refs<'a>(values: &'a [Bound<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
    }

    type BoxError = Box<dyn std::error::Error + Sync + Send>;

    impl ToSql for Bound<'_> {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
            match self.0 {
                Value::Null => Ok(IsNull::Yes),
                Value::Int(n) => match *ty {
                    Type::INT8 => n.to_sql(ty, out),
                    Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                    Type::BOOL => (n != 0).to_sql(ty, out),
                    Type::FLOAT8 => (n as f64).to_sql(ty, out),
                    Type::FLOAT4 => (n as f32).to_sql(ty, out),
                    Type::TEXT | Type::VARCHAR | Type::UNKNOWN => n.to_string().to_sql(ty, out),
                    _ => Err(format!("an integer cannot be bound as {ty}").into()),
                },
                Value::Real(f) => match *ty {
                    Type::FLOAT8 => f.to_sql(ty, out),
                    Type::FLOAT4 => (f as f32).to_sql(ty, out),
                    _ => Err(format!("a number cannot be bound as {ty}").into()),
                },
                Value::Text(t) => match *ty {
                    Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                        t.to_sql(ty, out)
                    }
                    // SQLite's loose typing can hold text in an integer column: refused here
                    // rather than written as the bytes of a wrong number.
                    _ => Err(format!("text cannot be bound as {ty}").into()),
                },
                Value::Blob(b) => match *ty {
                    Type::BYTEA => b.to_sql(ty, out),
                    _ => Err(format!("bytes cannot be bound as {ty}").into()),
                },
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    /// Column `i` of a row as a plain value, by the column's type.
    pub fn column(row: &postgres::Row, i: usize) -> Result<Value<'_>, String> {
        let ty = row
            .columns()
            .get(i)
            .ok_or_else(|| format!("no column {i}"))?
            .type_()
            .clone();
        let e = |e: postgres::Error| e.to_string();
        Ok(match ty {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(e)?
                .map_or(Value::Null, Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(e)?
                .map_or(Value::Null, |n| Value::Int(n.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(e)?
                .map_or(Value::Null, |n| Value::Int(n.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(e)?
                .map_or(Value::Null, |b| Value::Int(b.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(e)?
                .map_or(Value::Null, Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map_err(e)?
                .map_or(Value::Null, |f| Value::Real(f.into())),
            Type::BYTEA => row
                .try_get::<_, Option<&[u8]>>(i)
                .map_err(e)?
                .map_or(Value::Null, Value::Blob),
            _ => row
                .try_get::<_, Option<&str>>(i)
                .map_err(e)?
                .map_or(Value::Null, Value::Text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quoted_text() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?' AND d IN (?2, ?10)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $10)"
        );
        assert_eq!(
            placeholders(r#"SELECT "a?" FROM t WHERE x = ?3"#),
            r#"SELECT "a?" FROM t WHERE x = $3"#
        );
    }

    #[test]
    fn values_round_trip_through_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        let db = Db::sqlite(&conn);
        let blob = vec![1u8, 2, 3];
        let none: Option<i64> = None;
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            args![7i64, 2.5f64, "text", blob, none],
        )
        .unwrap();
        let row = db
            .query_row("SELECT i, f, s, b, n, i = 7 FROM t", args![], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<f64>(1)?,
                    r.get::<String>(2)?,
                    r.get::<Vec<u8>>(3)?,
                    r.get::<Option<i64>>(4)?,
                    r.get::<bool>(5)?,
                ))
            })
            .unwrap();
        assert_eq!(row, (7, 2.5, "text".into(), vec![1, 2, 3], None, true));
        assert!(matches!(
            db.query_row("SELECT i FROM t WHERE i = ?1", args![8i64], |r| r
                .get::<i64>(0)),
            Err(StoreError::NotFound)
        ));
        // A wrong number of parameters is an error, not a silent NULL.
        assert!(db
            .execute("INSERT INTO t (i) VALUES (?1)", args![])
            .is_err());
        // A text column read as an integer is an error that names the column.
        let err = db
            .query_row("SELECT s FROM t", args![], |r| r.get::<i64>(0))
            .unwrap_err();
        assert!(err.to_string().contains("column 0"), "{err}");
    }
}
