//! For tests and tools, not the server: a fresh, empty PostgreSQL database
//! per test run, and its dropping. Reached as `herald::store::testing`
//! (hidden from the documentation) because the integration tests in
//! `tests/` are another crate and cannot see `#[cfg(test)]` items.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use super::deadline::{with_deadline, ACQUIRE_TIMEOUT, ANSWER_DEADLINE};
use crate::store::StoreError;

/// What [`fresh_database`] names its databases: the prefix, then the Unix
/// time in seconds and a random part.
const FRESH_PREFIX: &str = "herald_test_";

/// How long creating or dropping a database may take: the server copies
/// or removes a whole database, slower while other tests do the same.
const ADMIN_DEADLINE: Duration = Duration::from_secs(30);

/// A database left by [`fresh_database`] this long ago is dropped by the
/// next call: a test run that stopped early left it.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// For tests and tools, not the server: creates an empty database on the
/// server of `base` (a URL whose user may create databases), and returns
/// its URL. Stale ones it made before are dropped first.
pub async fn fresh_database(base: &str) -> Result<String, StoreError> {
    let mut admin = admin_connection(base).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    drop_stale(&mut admin, now).await;
    let name = format!(
        "{FRESH_PREFIX}{}_{:08x}",
        now.as_secs(),
        rand::random::<u32>()
    );
    with_deadline(ADMIN_DEADLINE, async {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        Ok(())
    })
    .await?;
    let _ = admin.close().await;
    with_database(base, &name)
}

/// For tests and tools: drops a database [`fresh_database`] made, given
/// its URL; any other database is refused. Its connections are ended.
pub async fn drop_fresh_database(base: &str, url: &str) -> Result<(), StoreError> {
    let name = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|name| made_fresh(name))
        .ok_or_else(|| {
            StoreError::Unavailable("not a database made by fresh_database".to_string())
        })?;
    let mut admin = admin_connection(base).await?;
    let dropped = drop_database(&mut admin, name).await;
    let _ = admin.close().await;
    dropped
}

/// True for a name [`fresh_database`] could have made, and so safe to
/// quote unescaped.
fn made_fresh(name: &str) -> bool {
    name.strip_prefix(FRESH_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

async fn admin_connection(base: &str) -> Result<PgConnection, StoreError> {
    with_deadline(ACQUIRE_TIMEOUT, async {
        Ok(PgConnection::connect(base).await?)
    })
    .await
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), StoreError> {
    with_deadline(ADMIN_DEADLINE, async {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut *admin)
            .await?;
        Ok(())
    })
    .await
}

/// Drops the databases [`fresh_database`] made over a day before `now`.
async fn drop_stale(admin: &mut PgConnection, now: Duration) {
    let names: Vec<String> = match with_deadline(ANSWER_DEADLINE, async {
        Ok(
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(FRESH_PREFIX)
                .fetch_all(&mut *admin)
                .await?,
        )
    })
    .await
    {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error = %e, "could not list stale test databases");
            return;
        }
    };
    for name in names.iter().filter(|n| made_fresh(n)) {
        let made = name[FRESH_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<u64>().ok());
        let stale =
            made.is_some_and(|made| now.as_secs().saturating_sub(made) > STALE_AFTER.as_secs());
        if stale {
            if let Err(e) = drop_database(admin, name).await {
                tracing::warn!(database = %name, error = %e, "could not drop a stale test database");
            }
        }
    }
}

/// `base` with its database replaced by `name`, its parameters kept.
fn with_database(base: &str, name: &str) -> Result<String, StoreError> {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority = head
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| StoreError::Unavailable("the database URL has no scheme".to_string()))?;
    let server = match head[authority..].find('/') {
        Some(path) => &head[..authority + path],
        None => head,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::postgres::PgConnectOptions;

    use super::*;
    use crate::store::conformance::TestDatabase;

    #[tokio::test]
    async fn a_fresh_database_replaces_those_left_over_a_day() {
        let db = TestDatabase::create().await;
        let base = PgConnectOptions::from_str(&db.url).unwrap();
        let mut admin = PgConnection::connect_with(&base.database("postgres"))
            .await
            .unwrap();
        // Made in 1970 by the name's reckoning; one made now stays.
        for name in ["herald_test_1_0badf00d", "herald_test_1_0badf00e"] {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let next = TestDatabase::create().await;
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'herald_test_%'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!left.iter().any(|n| n.starts_with("herald_test_1_0badf00")));
        let name = |url: &str| url.rsplit('/').next().unwrap().to_string();
        assert!(left.contains(&name(&db.url)) && left.contains(&name(&next.url)));
        admin.close().await.unwrap();
        next.drop().await;
        db.drop().await;
    }

    #[test]
    fn a_fresh_database_keeps_the_server_and_parameters_of_its_base() {
        let url = |base| with_database(base, "herald_test_1_ab").unwrap();
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/herald_test_1_ab"
        );
        assert_eq!(
            url("postgres://u:p@db:5432?sslmode=disable"),
            "postgres://u:p@db:5432/herald_test_1_ab?sslmode=disable"
        );
        assert_eq!(url("postgresql://h"), "postgresql://h/herald_test_1_ab");
        assert!(with_database("nowhere", "x").is_err());
        assert!(made_fresh("herald_test_1700000000_0a1b2c3d"));
        assert!(!made_fresh("herald_test_"));
        assert!(!made_fresh("postgres"));
        assert!(
            !made_fresh("herald_test_1_AB"),
            "unquoted, it would name another"
        );
        assert!(!made_fresh("herald_test_1; DROP TABLE x"));
    }
}
