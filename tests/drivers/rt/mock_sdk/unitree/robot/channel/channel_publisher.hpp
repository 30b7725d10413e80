#pragma once
#include <memory>
#include <string>
#include <functional>
namespace unitree::robot {
class ChannelFactory { public: static ChannelFactory* Instance(); void Init(int32_t domain_id, const std::string& network_interface = ""); };
template <class MSG> class ChannelPublisher { public: explicit ChannelPublisher(const std::string& name); void InitChannel(); bool Write(const MSG& msg, int64_t wait_us = 0); };
template <class MSG> using ChannelPublisherPtr = std::shared_ptr<ChannelPublisher<MSG>>;
}
