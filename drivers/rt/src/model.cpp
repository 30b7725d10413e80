// The only translation unit that includes pinocchio (each such unit costs ~40 s to compile).
#include "robo_rt/model.hpp"

#include <Eigen/Cholesky>
#include <pinocchio/algorithm/crba.hpp>
#include <pinocchio/algorithm/frames.hpp>
#include <pinocchio/algorithm/jacobian.hpp>
#include <pinocchio/algorithm/kinematics.hpp>
#include <pinocchio/algorithm/model.hpp>
#include <pinocchio/algorithm/rnea.hpp>
#include <pinocchio/multibody/data.hpp>
#include <pinocchio/multibody/model.hpp>
#include <pinocchio/parsers/urdf.hpp>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace robo::rt {

struct RobotModel::Impl {
  pinocchio::Model model;
  pinocchio::Data data;
  pinocchio::FrameIndex tcp = 0;
  Limits limits;
  Eigen::VectorXd q, dq;                 // sized nq / nv once, reused every tick
  Eigen::Matrix<double, 6, Eigen::Dynamic> J6;

  explicit Impl(const pinocchio::Model& m, pinocchio::FrameIndex tcp_id, const Limits& lim)
      : model(m), data(m), tcp(tcp_id), limits(lim), q(Eigen::VectorXd::Zero(m.nq)),
        dq(Eigen::VectorXd::Zero(m.nv)), J6(Eigen::Matrix<double, 6, Eigen::Dynamic>::Zero(6, m.nv)) {}
};

RobotModel::RobotModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RobotModel::~RobotModel() = default;

RobotModel::RobotModel(const std::string& urdf_path, const std::vector<std::string>& arm_joints,
                       const std::string& tcp_frame) {
  if (!std::ifstream(urdf_path).good()) {
    throw std::runtime_error("robo.rt: URDF not found: " + urdf_path);
  }
  if (arm_joints.size() != static_cast<size_t>(kDof)) {
    throw std::runtime_error("robo.rt: arm_joints must name exactly 7 joints");
  }
  pinocchio::Model full;
  pinocchio::urdf::buildModel(urdf_path, full);

  std::vector<pinocchio::JointIndex> keep;
  for (const auto& name : arm_joints) {
    if (!full.existJointName(name)) {
      throw std::runtime_error("robo.rt: joint '" + name + "' not in " + urdf_path);
    }
    keep.push_back(full.getJointId(name));
  }
  std::vector<pinocchio::JointIndex> lock;
  for (pinocchio::JointIndex j = 1; j < static_cast<pinocchio::JointIndex>(full.njoints); ++j) {
    if (std::find(keep.begin(), keep.end(), j) == keep.end()) lock.push_back(j);
  }
  const Eigen::VectorXd q_ref = Eigen::VectorXd::Zero(full.nq);  // fingers locked closed: their
  // combined centre of mass is the same for every symmetric opening, so gravity is unaffected.
  pinocchio::Model reduced = pinocchio::buildReducedModel(full, lock, q_ref);
  if (reduced.nq != kDof || reduced.nv != kDof) {
    throw std::runtime_error("robo.rt: reduced model has nq=" + std::to_string(reduced.nq) +
                             ", expected 7 (revolute arm joints)");
  }
  // Joint order in the reduced model must match arm_joints (base to tip).
  for (int i = 0; i < kDof; ++i) {
    if (reduced.names[static_cast<size_t>(i) + 1] != arm_joints[static_cast<size_t>(i)]) {
      throw std::runtime_error("robo.rt: arm_joints must be listed base to tip");
    }
  }
  if (!reduced.existFrame(tcp_frame)) {
    throw std::runtime_error("robo.rt: frame '" + tcp_frame + "' not in " + urdf_path);
  }
  Limits lim;
  for (int i = 0; i < kDof; ++i) {
    lim.q_min[i] = reduced.lowerPositionLimit[i];
    lim.q_max[i] = reduced.upperPositionLimit[i];
    lim.dq_max[i] = reduced.velocityLimit[i];
    lim.tau_max[i] = reduced.effortLimit[i];
  }
  impl_ = std::make_unique<Impl>(reduced, reduced.getFrameId(tcp_frame), lim);
}

std::unique_ptr<RobotModel> RobotModel::clone() const {
  auto impl = std::make_unique<Impl>(impl_->model, impl_->tcp, impl_->limits);
  return std::unique_ptr<RobotModel>(new RobotModel(std::move(impl)));
}

void RobotModel::setArmature(const Vec7& armature) { impl_->model.armature = armature; }

const Limits& RobotModel::limits() const { return impl_->limits; }

void RobotModel::compute(const Vec7& q, const Vec7& dq, Dynamics& out) {
  Impl& m = *impl_;
  m.q = q;
  m.dq = dq;
  // CRBA in the WORLD convention also leaves oMi and the joint Jacobians (data.J) behind.
  pinocchio::crba(m.model, m.data, m.q, pinocchio::Convention::WORLD);
  m.data.M.triangularView<Eigen::StrictlyLower>() = m.data.M.transpose().triangularView<Eigen::StrictlyLower>();
  out.M = m.data.M;
  out.M_inv = out.M.llt().solve(Mat7::Identity());
  pinocchio::updateFramePlacement(m.model, m.data, m.tcp);
  m.J6.setZero();
  pinocchio::getFrameJacobian(m.model, m.data, m.tcp, pinocchio::LOCAL_WORLD_ALIGNED, m.J6);
  out.J = m.J6;
  const pinocchio::SE3& world_T_tcp = m.data.oMf[m.tcp];
  out.world_p_tcp = world_T_tcp.translation();
  out.world_R_tcp = world_T_tcp.rotation();
  out.nle = pinocchio::nonLinearEffects(m.model, m.data, m.q, m.dq);
  out.g = pinocchio::computeGeneralizedGravity(m.model, m.data, m.q);
}

void RobotModel::tcpPose(const Vec7& q, Vec3& world_p_tcp, Mat3& world_R_tcp) {
  Impl& m = *impl_;
  m.q = q;
  pinocchio::forwardKinematics(m.model, m.data, m.q);
  pinocchio::updateFramePlacement(m.model, m.data, m.tcp);
  world_p_tcp = m.data.oMf[m.tcp].translation();
  world_R_tcp = m.data.oMf[m.tcp].rotation();
}

}  // namespace robo::rt
