//! Golden-file test: the full provisioning script (version table, every data-table and index
//! statement, version stamp) for a few table prefixes must match `tests/golden/ddl.sql` byte for
//! byte, so any schema drift shows up in review. After a deliberate schema change, regenerate
//! with `POWER_LOOP_BLESS_DDL=1 cargo nextest run -p power-loop-store-mysql --test ddl_golden`.

use std::path::Path;

use power_loop_store::ddl::assert_ddl_golden;
use power_loop_store_mysql::MySqlDialect;

#[test]
fn provisioning_ddl_matches_the_golden_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ddl.sql");
    assert_ddl_golden(&MySqlDialect::default(), &path);
}
