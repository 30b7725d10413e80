#pragma once
#include <memory>
#include <string>
#include <functional>
namespace unitree::robot {
template <class MSG> class ChannelSubscriber { public: explicit ChannelSubscriber(const std::string& name);
  void InitChannel(const std::function<void(const void*)>& handler, int64_t queuelen = 0); void CloseChannel(); };
template <class MSG> using ChannelSubscriberPtr = std::shared_ptr<ChannelSubscriber<MSG>>;
}
