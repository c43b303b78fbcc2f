#include <outpost/error.hpp>
#include <outpost/sqlite.hpp>

#include <doctest/doctest.h>

using namespace outpost;

TEST_SUITE("platform.sqlite") {
  TEST_CASE("statements bind, step and read back values") {
    sql::Database db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("CREATE TABLE t(a INTEGER, b TEXT, c BLOB, d REAL)");
    sql::Statement ins(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)");
    const unsigned char blob[] = {0, 1, 2};
    ins.bind(1, std::int64_t{7}).bind(2, std::string_view("seven")).bindBlob(3, blob).bind(4, 1.5);
    ins.run();
    sql::Statement sel(db, "SELECT a, b, c, d FROM t");
    REQUIRE(sel.step());
    CHECK(sel.columnInt(0) == 7);
    CHECK(sel.columnText(1) == "seven");
    CHECK(sel.columnBlob(2).size() == 3);
    CHECK(sel.columnDouble(3) == doctest::Approx(1.5));
    CHECK_FALSE(sel.step());
  }

  TEST_CASE("a transaction not committed is rolled back") {
    sql::Database db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("CREATE TABLE t(a)");
    {
      sql::Transaction tx(db);
      db.exec("INSERT INTO t VALUES (1)");
    }
    CHECK(db.queryInt("SELECT count(*) FROM t") == 0);
    {
      sql::Transaction tx(db);
      db.exec("INSERT INTO t VALUES (1)");
      tx.commit();
    }
    CHECK(db.queryInt("SELECT count(*) FROM t") == 1);
  }

  TEST_CASE("SQLite failures become outpost::Error with a mapped code") {
    sql::Database db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec("CREATE TABLE t(a PRIMARY KEY)");
    db.exec("INSERT INTO t VALUES (1)");
    try {
      db.exec("INSERT INTO t VALUES (1)");
      FAIL("duplicate key accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
    }
    CHECK_THROWS_AS(sql::Statement(db, "SELEKT nonsense"), Error);
    CHECK_THROWS_AS(sql::Database("/nonexistent-dir/x.db", SQLITE_OPEN_READWRITE), Error);
  }
}
