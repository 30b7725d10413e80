#include "robo_rt/mujoco_backend.hpp"

#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace robo::rt {

namespace {

int idOf(const mjModel* m, int type, const std::string& name, const char* what) {
  const int id = mj_name2id(m, type, name.c_str());
  if (id < 0) throw std::runtime_error(std::string("robo.rt: MuJoCo model has no ") + what + " '" + name + "'");
  return id;
}

}  // namespace

MujocoBackend::MujocoBackend(const mjModel* m, mjData* d, double loop_hz, const MujocoNames& names)
    : m_(m), d_(d) {
  if (m == nullptr || d == nullptr) throw std::invalid_argument("robo.rt: null mjModel/mjData");
  const double dt = m->opt.timestep;
  if (loop_hz <= 0.0) {
    rate_hz_ = 1.0 / dt;
  } else {
    const double ratio = 1.0 / (loop_hz * dt);
    substeps_ = static_cast<int>(std::lround(ratio));
    if (substeps_ < 1 || std::abs(ratio - substeps_) > 1e-6) {
      throw std::invalid_argument("robo.rt: loop_hz=" + std::to_string(loop_hz) +
                                  " must divide 1 / model.opt.timestep=" + std::to_string(1.0 / dt));
    }
    rate_hz_ = loop_hz;
  }
  for (int i = 0; i < kDof; ++i) {
    const int j = idOf(m, mjOBJ_JOINT, names.joints[i], "joint");
    qpos_[i] = m->jnt_qposadr[j];
    dof_[i] = m->jnt_dofadr[j];
    const int a = idOf(m, mjOBJ_ACTUATOR, names.actuators[i], "actuator");
    if (m->actuator_trntype[a] != mjTRN_JOINT || m->actuator_trnid[2 * a] != j) {
      throw std::runtime_error("robo.rt: actuator '" + names.actuators[i] + "' must drive joint '" +
                               names.joints[i] + "' directly");
    }
    act_[i] = m->actuator_ctrladr[a];
    gear_[i] = m->actuator_gear[6 * m->actuator_outadr[a]];
    if (gear_[i] == 0.0) throw std::runtime_error("robo.rt: actuator '" + names.actuators[i] + "' has zero gear");
  }
  // Gripper (optional): two finger slides, width = sum of their openings.
  const int f0 = mj_name2id(m, mjOBJ_JOINT, names.fingers[0].c_str());
  const int f1 = mj_name2id(m, mjOBJ_JOINT, names.fingers[1].c_str());
  const int ga = mj_name2id(m, mjOBJ_ACTUATOR, names.gripper_actuator.c_str());
  if (f0 >= 0 && f1 >= 0 && ga >= 0) {
    finger_qpos_ = {m->jnt_qposadr[f0], m->jnt_qposadr[f1]};
    finger_dof_ = {m->jnt_dofadr[f0], m->jnt_dofadr[f1]};
    gripper_act_ = m->actuator_ctrladr[ga];
    // Sign: does a positive actuator force increase the width? For a fixed tendon, the sum of its
    // joint coefficients says; for a joint transmission, the gear does.
    double s = m->actuator_gear[6 * m->actuator_outadr[ga]];
    if (m->actuator_trntype[ga] == mjTRN_TENDON) {
      const int t = m->actuator_trnid[2 * ga];
      double coef = 0.0;
      for (int w = m->tendon_adr[t]; w < m->tendon_adr[t] + m->tendon_num[t]; ++w) coef += m->wrap_prm[w];
      s *= coef;
    }
    gripper_sign_ = (s >= 0.0) ? 1.0 : -1.0;
  }
  mirrored_ = m->nq <= PhysicsState::kMaxQpos && m->nv <= PhysicsState::kMaxQvel;
}

bool MujocoBackend::read(RobotState& out) {
  for (int i = 0; i < kDof; ++i) {
    out.q[i] = d_->qpos[qpos_[i]];
    out.dq[i] = d_->qvel[dof_[i]];
  }
  if (gripper_act_ >= 0) {
    out.gripper_width = d_->qpos[finger_qpos_[0]] + d_->qpos[finger_qpos_[1]];
    out.gripper_speed = d_->qvel[finger_dof_[0]] + d_->qvel[finger_dof_[1]];
  }
  if (mirrored_) {  // between two mj_step calls: one consistent world state
    PhysicsState& w = mirror_.back();
    w.t = d_->time;
    w.nq = m_->nq;
    w.nv = m_->nv;
    std::copy(d_->qpos, d_->qpos + m_->nq, w.qpos.begin());
    std::copy(d_->qvel, d_->qvel + m_->nv, w.qvel.begin());
    mirror_.publish();
  }
  return true;
}

bool MujocoBackend::physicsState(PhysicsState& out) const {
  if (!mirrored_) return false;
  std::lock_guard<std::mutex> lock(mirror_read_mutex_);
  if (mirror_.fetch()) mirror_read_ = mirror_.front();
  out = mirror_read_;
  return true;
}

void MujocoBackend::write(const JointCommand& cmd) {
  for (int i = 0; i < kDof; ++i) d_->ctrl[act_[i]] = cmd.tau[i] / gear_[i];
  if (gripper_act_ >= 0) d_->ctrl[gripper_act_] = gripper_sign_ * cmd.gripper_force;
}

void MujocoBackend::advance() {
  for (int k = 0; k < substeps_; ++k) mj_step(m_, d_);
}

double MujocoBackend::simTime() const { return d_->time; }

std::optional<Vec7> MujocoBackend::armature() const {
  Vec7 a;
  for (int i = 0; i < kDof; ++i) a[i] = m_->dof_armature[dof_[i]];
  return a;
}

}  // namespace robo::rt
