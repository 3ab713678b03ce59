//! One PostgreSQL schema per test, so tests run in parallel on one database.

use sea_orm::{ConnectionTrait, Database};

/// The test database: `LATCHKEY_TEST_DATABASE_URL`, or the local default
/// that `scripts/test` provides.
pub fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, dropped (with everything in it) when this value drops.
#[derive(Debug)]
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    /// Creates a uniquely named schema.
    pub async fn create() -> Self {
        let name = format!("test_{}", uuid::Uuid::now_v7().simple());
        let url = postgres_url();
        let connection = Database::connect(&url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {url} ({error}); run scripts/test, which starts it"
            )
        });
        connection
            .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create test schema");
        Self { name }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a short-lived thread with its own runtime does the clean-up.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(connection) = Database::connect(&postgres_url()).await {
                    let _ = connection.execute_unprepared(&statement).await;
                }
            });
        })
        .join();
    }
}
