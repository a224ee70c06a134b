//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod app;
pub mod db;
pub mod env;
pub mod idp;
pub mod spec;

/// Runs each `async fn(&TestApp)` twice: on a fresh SQLite file and on a fresh PostgreSQL
/// database.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::db::fresh_sqlite().await;
                    let app = $crate::common::app::TestApp::spawn(db.url.clone()).await;
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::db::fresh_postgres().await;
                    let app = $crate::common::app::TestApp::spawn(db.url.clone()).await;
                    super::$name(&app).await;
                }
            )*
        }
    };
}
