// A JDBC client (pgjdbc, Debian's libpostgresql-jdbc-java) through posternd: what an engineer's
// DBeaver, IntelliJ or Java service does. Prints one "name=value" line per check; the Python test
// (test_jdbc.py) asserts them. Usage: java -cp postgresql.jar:DIR PgThrough JDBC_URL
import java.sql.*;
import java.util.Properties;

public class PgThrough {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        try (Connection c = DriverManager.getConnection(url)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product=" + md.getDatabaseProductName());
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select current_user, current_database()")) {
                rs.next();
                System.out.println("who=" + rs.getString(1) + "|" + rs.getString(2));
            }
            try (Statement st = c.createStatement()) {
                st.execute("drop table if exists jdbc_t");
                st.execute("create table jdbc_t (id int primary key, name text, amount numeric(10,2))");
            }
            // Past prepareThreshold (5) pgjdbc switches to named server-side statements.
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_t values (?, ?, ?)")) {
                for (int i = 1; i <= 20; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "row " + i);
                    ps.setBigDecimal(3, new java.math.BigDecimal(i + ".50"));
                    ps.executeUpdate();
                }
            }
            // Batch: many Bind/Execute before one Sync.
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_t values (?, ?, ?)")) {
                for (int i = 21; i <= 120; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "batch " + i);
                    ps.setBigDecimal(3, java.math.BigDecimal.ONE);
                    ps.addBatch();
                }
                int[] n = ps.executeBatch();
                System.out.println("batch=" + n.length);
            }
            try (PreparedStatement ps = c.prepareStatement("select count(*), sum(amount) from jdbc_t where id <= ?")) {
                for (int i = 0; i < 8; i++) {
                    ps.setInt(1, 20);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        if (i == 7)
                            System.out.println("sum=" + rs.getLong(1) + "|" + rs.getBigDecimal(2));
                    }
                }
            }
            // A cursor: fetchSize with autocommit off makes pgjdbc Execute with a row limit
            // (PortalSuspended) and fetch again.
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.setFetchSize(7);
                long rows = 0;
                try (ResultSet rs = st.executeQuery("select id from jdbc_t order by id")) {
                    while (rs.next())
                        rows++;
                }
                System.out.println("cursor_rows=" + rows);
            }
            // An error inside a transaction, then rollback, then the session goes on.
            try (Statement st = c.createStatement()) {
                st.execute("insert into jdbc_t values (1000, 'x', 1)");
                try {
                    st.execute("insert into jdbc_t values (1, 'duplicate', 1)");
                    System.out.println("duplicate=accepted");
                } catch (SQLException e) {
                    System.out.println("duplicate=" + e.getSQLState());
                }
                c.rollback();
            }
            c.setAutoCommit(true);
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select count(*) from jdbc_t where id = 1000")) {
                rs.next();
                System.out.println("rolled_back=" + (rs.getLong(1) == 0));
            }
            // A statement the policy denies: SQLSTATE 42501 with the reason; the session goes on.
            try (Statement st = c.createStatement()) {
                st.executeQuery("select 'forbidden'");
                System.out.println("denied=no");
            } catch (SQLException e) {
                System.out.println("denied=" + e.getSQLState() + "|" + e.getMessage().replace('\n', ' '));
            }
            try (PreparedStatement ps = c.prepareStatement("select ?::int + 1")) {
                ps.setInt(1, 41);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("after_denial=" + rs.getInt(1));
                }
            }
            try (Statement st = c.createStatement()) {
                st.execute("drop table jdbc_t");
            }
        }
        System.out.println("done=ok");
    }
}
