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
  RobotDescription robot;
  std::vector<pinocchio::FrameIndex> tcps;
  std::vector<int> joint_tcp;            // per joint: the TCP its group moves, or -1
  Limits limits;
  Eigen::VectorXd q, dq;                 // sized nq / nv once, reused every tick
  Eigen::Matrix<double, 6, Eigen::Dynamic> J6;

  Impl(const pinocchio::Model& m, const RobotDescription& r, const std::vector<pinocchio::FrameIndex>& t,
       const Limits& lim)
      : model(m), data(m), robot(r), tcps(t), joint_tcp(r.jointTcp()), limits(lim), q(Eigen::VectorXd::Zero(m.nq)),
        dq(Eigen::VectorXd::Zero(m.nv)), J6(Eigen::Matrix<double, 6, Eigen::Dynamic>::Zero(6, m.nv)) {}

  // Stacked, group-masked TCP Jacobians from data.J (after a CRBA or computeJointJacobians).
  void stackJacobians(Dynamics& out) {
    const int n = model.nv, K = static_cast<int>(tcps.size());
    out.n_tcp = K;
    out.J.setZero(6 * K, n);
    for (int k = 0; k < K; ++k) {
      pinocchio::updateFramePlacement(model, data, tcps[static_cast<size_t>(k)]);
      J6.setZero();
      pinocchio::getFrameJacobian(model, data, tcps[static_cast<size_t>(k)], pinocchio::LOCAL_WORLD_ALIGNED, J6);
      for (int j = 0; j < n; ++j) {
        if (joint_tcp[static_cast<size_t>(j)] == k) out.J.block<6, 1>(6 * k, j) = J6.col(j);
      }
      const pinocchio::SE3& world_T_tcp = data.oMf[tcps[static_cast<size_t>(k)]];
      out.world_p_tcp[static_cast<size_t>(k)] = world_T_tcp.translation();
      out.world_R_tcp[static_cast<size_t>(k)] = world_T_tcp.rotation();
    }
  }
};

RobotModel::RobotModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RobotModel::~RobotModel() = default;

namespace {

RobotDescription oneArm(const std::vector<std::string>& joints, const std::string& tcp) {
  RobotDescription d;
  d.groups = {JointGroup{"arm", joints, tcp}};
  d.tcp_frames = {tcp};
  return d;
}

}  // namespace

RobotModel::RobotModel(const std::string& urdf_path, const std::vector<std::string>& arm_joints,
                       const std::string& tcp_frame)
    : RobotModel(urdf_path, oneArm(arm_joints, tcp_frame)) {}

RobotModel::RobotModel(const std::string& urdf_path, const RobotDescription& robot) {
  if (!std::ifstream(urdf_path).good()) {
    throw std::runtime_error("robo.rt: URDF not found: " + urdf_path);
  }
  const std::string bad = robot.validate(kMaxDof, kMaxTcps);
  if (!bad.empty()) throw std::runtime_error("robo.rt: " + bad);
  const std::vector<std::string> joints = robot.joints();
  pinocchio::Model full;
  pinocchio::urdf::buildModel(urdf_path, full);

  std::vector<pinocchio::JointIndex> keep;
  for (const auto& name : joints) {
    if (!full.existJointName(name)) {
      throw std::runtime_error("robo.rt: joint '" + name + "' not in " + urdf_path);
    }
    keep.push_back(full.getJointId(name));
  }
  std::vector<pinocchio::JointIndex> lock;
  for (pinocchio::JointIndex j = 1; j < static_cast<pinocchio::JointIndex>(full.njoints); ++j) {
    if (std::find(keep.begin(), keep.end(), j) == keep.end()) lock.push_back(j);
  }
  // Locked joints at 0: Panda fingers closed (their combined centre of mass is the same for every
  // symmetric opening, so gravity is unaffected); a welded humanoid's legs straight.
  const Eigen::VectorXd q_ref = Eigen::VectorXd::Zero(full.nq);
  pinocchio::Model reduced = pinocchio::buildReducedModel(full, lock, q_ref);
  const int n = static_cast<int>(joints.size());
  if (reduced.nq != n || reduced.nv != n) {
    throw std::runtime_error("robo.rt: reduced model has nq=" + std::to_string(reduced.nq) + ", expected " +
                             std::to_string(n) + " (revolute joints)");
  }
  // Joint order in the reduced model (the URDF's) must match the groups' order.
  for (int i = 0; i < n; ++i) {
    if (reduced.names[static_cast<size_t>(i) + 1] != joints[static_cast<size_t>(i)]) {
      std::string order;
      for (int k = 1; k < reduced.njoints; ++k) order += (k > 1 ? ", " : "") + reduced.names[static_cast<size_t>(k)];
      throw std::runtime_error("robo.rt: arm_joints must be listed base to tip, in the URDF's order: " + order);
    }
  }
  std::vector<pinocchio::FrameIndex> tcps;
  for (const auto& frame : robot.tcp_frames) {
    if (!reduced.existFrame(frame)) throw std::runtime_error("robo.rt: frame '" + frame + "' not in " + urdf_path);
    tcps.push_back(reduced.getFrameId(frame));
  }
  Limits lim;
  lim.q_min = reduced.lowerPositionLimit;
  lim.q_max = reduced.upperPositionLimit;
  lim.dq_max = reduced.velocityLimit;
  lim.tau_max = reduced.effortLimit;
  impl_ = std::make_unique<Impl>(reduced, robot, tcps, lim);
}

std::unique_ptr<RobotModel> RobotModel::clone() const {
  auto impl = std::make_unique<Impl>(impl_->model, impl_->robot, impl_->tcps, impl_->limits);
  return std::unique_ptr<RobotModel>(new RobotModel(std::move(impl)));
}

int RobotModel::nJoints() const { return impl_->model.nv; }
int RobotModel::nTcps() const { return static_cast<int>(impl_->tcps.size()); }

void RobotModel::setArmature(const VecN& armature) { impl_->model.armature = armature; }

const Limits& RobotModel::limits() const { return impl_->limits; }
const RobotDescription& RobotModel::robot() const { return impl_->robot; }

void RobotModel::compute(const VecN& q, const VecN& dq, Dynamics& out) {
  Impl& m = *impl_;
  m.q = q;
  m.dq = dq;
  // CRBA in the WORLD convention also leaves oMi and the joint Jacobians (data.J) behind.
  pinocchio::crba(m.model, m.data, m.q, pinocchio::Convention::WORLD);
  m.data.M.triangularView<Eigen::StrictlyLower>() = m.data.M.transpose().triangularView<Eigen::StrictlyLower>();
  const int n = m.model.nv;
  out.M = m.data.M;
  out.M_inv = out.M.llt().solve(MatN::Identity(n, n));
  m.stackJacobians(out);
  out.nle = pinocchio::nonLinearEffects(m.model, m.data, m.q, m.dq);
  out.g = pinocchio::computeGeneralizedGravity(m.model, m.data, m.q);
}

void RobotModel::kinematics(const VecN& q, Dynamics& out) {
  Impl& m = *impl_;
  m.q = q;
  pinocchio::computeJointJacobians(m.model, m.data, m.q);  // also the joint placements
  m.stackJacobians(out);
}

void RobotModel::tcpPoses(const VecN& q, std::array<Vec3, kMaxTcps>& world_p_tcp,
                          std::array<Mat3, kMaxTcps>& world_R_tcp) {
  Impl& m = *impl_;
  m.q = q;
  pinocchio::forwardKinematics(m.model, m.data, m.q);
  for (size_t k = 0; k < m.tcps.size(); ++k) {
    pinocchio::updateFramePlacement(m.model, m.data, m.tcps[k]);
    world_p_tcp[k] = m.data.oMf[m.tcps[k]].translation();
    world_R_tcp[k] = m.data.oMf[m.tcps[k]].rotation();
  }
}

}  // namespace robo::rt
