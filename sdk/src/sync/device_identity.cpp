#include "outpost/device_identity.hpp"

#include <outpost/asio.hpp>
#include <outpost/error.hpp>
#include <outpost/protocol/session.hpp>

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>

namespace outpost {

namespace {

namespace noise = protocol::noise;

constexpr std::string_view kSchema =
    "CREATE TABLE IF NOT EXISTS device_identity("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'enrolled')),"
    " device_secret BLOB NOT NULL, device_public BLOB NOT NULL,"
    " server_host TEXT NOT NULL, server_port INTEGER NOT NULL, server_key BLOB NOT NULL,"
    " device_id BLOB, worker_id TEXT, team_id TEXT)";

std::span<const unsigned char> blob(std::span<const std::uint8_t> bytes) { return bytes; }

template <std::size_t N>
std::array<std::uint8_t, N> fixed(std::span<const unsigned char> bytes, const char* what) {
  std::array<std::uint8_t, N> out{};
  if (bytes.size() != N) {
    throw Error(Errc::corrupt, std::string("the stored device identity has a bad ") + what);
  }
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

struct Stored {
  std::string state;
  DeviceIdentity identity;
};

std::optional<Stored> readStored(sql::Database& db) {
  if (db.queryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'device_identity'") == 0) {
    return std::nullopt;
  }
  sql::Statement st(db, "SELECT state, device_secret, server_host, server_port, server_key,"
                        " device_id, worker_id, team_id FROM device_identity WHERE id = 1");
  if (!st.step()) {
    return std::nullopt;
  }
  Stored s;
  s.state = std::string(st.columnText(0));
  s.identity.deviceKey = noise::KeyPair::fromSecret(st.columnBlob(1));
  s.identity.serverHost = std::string(st.columnText(2));
  s.identity.serverPort = static_cast<std::uint16_t>(st.columnInt(3));
  s.identity.serverKey = fixed<noise::kKeySize>(st.columnBlob(4), "server key");
  if (s.state == "enrolled") {
    s.identity.deviceId = fixed<16>(st.columnBlob(5), "device id");
    s.identity.workerId = std::string(st.columnText(6));
    s.identity.teamId = std::string(st.columnText(7));
  }
  return s;
}

} // namespace

DeviceIdentity enrollDevice(Context& context, Vault& vault, std::string_view payloadText,
                            std::string_view appVersion, std::chrono::seconds timeout) {
  const protocol::EnrollmentPayload payload = protocol::parseEnrollmentPayload(payloadText);

  // The key pair: reuse a pending one for the same server, else make and store one.
  std::optional<noise::KeyPair> key;
  vault.write([&](sql::Database& db) {
    db.exec(kSchema);
    auto stored = readStored(db);
    if (stored && stored->state == "enrolled") {
      throw Error(Errc::already_exists,
                  "this device is already enrolled; wipe the vault to enroll it again");
    }
    if (stored && stored->identity.serverKey == payload.serverKey) {
      key = std::move(stored->identity.deviceKey);
      return;
    }
    key = noise::KeyPair::generate(context);
    sql::Statement st(db, "INSERT OR REPLACE INTO device_identity(id, state, device_secret,"
                          " device_public, server_host, server_port, server_key)"
                          " VALUES (1, 'pending', ?1, ?2, ?3, ?4, ?5)");
    st.bindBlob(1, blob(key->secretKey.span()))
        .bindBlob(2, blob(key->publicKey))
        .bind(3, std::string_view(payload.host))
        .bind(4, std::int64_t{payload.port})
        .bindBlob(5, blob(payload.serverKey));
    st.run();
  });

  // The handshake.
  asio::io_context io;
  std::optional<protocol::EnrollReply> reply;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::ip::tcp::resolver resolver(io);
        const auto endpoints = co_await resolver.async_resolve(
            payload.host, std::to_string(payload.port), asio::use_awaitable);
        asio::ip::tcp::socket socket(io);
        co_await asio::async_connect(socket, endpoints, asio::use_awaitable);
        reply = co_await protocol::enrollDevice(context, std::move(socket), payload, *key,
                                                std::string(appVersion));
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run_for(timeout);
  if (!reply && !failure) {
    throw Error(Errc::timeout, "the server did not complete enrollment within " +
                                   std::to_string(timeout.count()) + " s; retry later");
  }
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const Error&) {
      throw;
    } catch (const boost::system::system_error& e) {
      throw Error(Errc::network, "cannot reach the server at " + payload.host + ":" +
                                     std::to_string(payload.port) + ": " + e.code().message());
    }
  }

  vault.write([&](sql::Database& db) {
    sql::Statement st(db, "UPDATE device_identity SET state = 'enrolled', device_id = ?1,"
                          " worker_id = ?2, team_id = ?3 WHERE id = 1");
    st.bindBlob(1, blob(reply->deviceId))
        .bind(2, std::string_view(reply->workerId))
        .bind(3, std::string_view(reply->teamId));
    st.run();
  });
  context.log().info("device enrolled with the server");

  DeviceIdentity identity;
  identity.deviceId = reply->deviceId;
  identity.workerId = reply->workerId;
  identity.teamId = reply->teamId;
  identity.serverHost = payload.host;
  identity.serverPort = payload.port;
  identity.serverKey = payload.serverKey;
  identity.deviceKey = std::move(*key);
  return identity;
}

std::optional<DeviceIdentity> loadDeviceIdentity(Vault& vault) {
  std::optional<DeviceIdentity> out;
  vault.read([&](sql::Database& db) {
    auto stored = readStored(db);
    if (stored && stored->state == "enrolled") {
      out = std::move(stored->identity);
    }
  });
  return out;
}

} // namespace outpost
