package metadata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// azureAssetTag is the chassis asset tag of every Azure VM; Hyper-V outside
// Azure shows the same vendor and product name, but not this tag.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// Detect tells the cloud from the DMI identification files in dir
// (normally /sys/class/dmi/id): sys_vendor and product_name, plus
// chassis_asset_tag to tell Azure from Hyper-V and bios_version for older
// Xen-based EC2 instances. It returns "" when the machine is of no known
// cloud, and what it saw, for the log.
func Detect(dir string) (provider v1alpha1.MetadataProvider, seen string) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	vendor, product := read("sys_vendor"), read("product_name")
	seen = fmt.Sprintf("sys_vendor=%q product_name=%q", vendor, product)
	lv, lp := strings.ToLower(vendor), strings.ToLower(product)
	switch {
	case strings.Contains(lv, "amazon"):
		return v1alpha1.MetadataProviderAWS, seen
	case strings.Contains(lv, "google") || strings.Contains(lp, "google compute engine"):
		return v1alpha1.MetadataProviderGCP, seen
	case strings.Contains(lv, "alibaba") || strings.Contains(lv, "aliyun") || strings.Contains(lp, "alibaba cloud"):
		return v1alpha1.MetadataProviderAlibaba, seen
	case lv == "microsoft corporation" && lp == "virtual machine":
		tag := read("chassis_asset_tag")
		seen += fmt.Sprintf(" chassis_asset_tag=%q", tag)
		if tag == "" || tag == azureAssetTag {
			return v1alpha1.MetadataProviderAzure, seen
		}
	case lv == "xen":
		// EC2's Xen generation says sys_vendor=Xen; its BIOS says amazon.
		bios := read("bios_version")
		seen += fmt.Sprintf(" bios_version=%q", bios)
		if strings.Contains(strings.ToLower(bios), "amazon") {
			return v1alpha1.MetadataProviderAWS, seen
		}
	}
	return "", seen
}
