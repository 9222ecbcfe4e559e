// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_mig_emu: seeded driver bugs ("quirks", see the uAPI header).  The
 * masks live here; each quirk is implemented where the behaviour it bends
 * lives (fsm.c, data.c), behind vme_quirk().
 */
#include <linux/bits.h>
#include <linux/device.h>
#include <linux/printk.h>

#include "vme.h"

/* Module-global mask; READ_ONCE/WRITE_ONCE, no lock (a plain word). */
u64 vme_quirks_global;

static const char *const vme_quirk_names[] = VFIO_MIG_EMU_QUIRK_NAMES;
static_assert(ARRAY_SIZE(vme_quirk_names) == VFIO_MIG_EMU_QUIRK_COUNT);

/* Say which quirks were turned on, so a kernel log explains odd results. */
static void vme_quirks_log(struct vme_device *vme, u64 old, u64 mask)
{
	unsigned long on = mask & ~old;
	unsigned int q;

	for_each_set_bit(q, &on, VFIO_MIG_EMU_QUIRK_COUNT) {
		if (vme)
			dev_info(vme->vdev.dev, "quirk %s on: this device now breaks the uAPI on purpose\n",
				 vme_quirk_names[q]);
		else
			pr_info("vfio_mig_emu: quirk %s on for every device: the module now breaks the uAPI on purpose\n",
				vme_quirk_names[q]);
	}
}

/* @mask was validated against VFIO_MIG_EMU_QUIRKS_ALL by the policy. */
void vme_quirks_set(struct vme_device *vme, u64 mask)
{
	u64 old;

	if (vme)
		old = xchg(&vme->quirks, mask);
	else
		old = xchg(&vme_quirks_global, mask);
	vme_quirks_log(vme, old, mask);
}

u64 vme_quirks_get(struct vme_device *vme)
{
	return vme ? READ_ONCE(vme->quirks) : READ_ONCE(vme_quirks_global);
}
