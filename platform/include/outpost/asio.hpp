#pragma once
/// \file
/// The one way Outpost includes Boost.Asio.
///
/// Boost 1.74's `asio/awaitable.hpp` uses std::exchange without including
/// <utility>, which gcc 12's libstdc++ no longer pulls in transitively: include it
/// first. Boost 1.74 also has no `asio::as_tuple`; use
/// `asio::redirect_error(asio::use_awaitable, ec)` for errors as values.

#include <utility> // must precede Asio (Boost 1.74 + gcc 12)

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace outpost {
namespace asio = boost::asio;
} // namespace outpost
